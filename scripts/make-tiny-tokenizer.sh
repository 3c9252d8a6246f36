#!/usr/bin/env bash
# Trains weights/tiny/tokenizer.model: a 4,000-piece LLaMA-style BPE sentencepiece model for the
# embedded tiny default model and the tests.
#
# Every trainer setting equals LLaMA-1/2's but the vocabulary size (byte fallback, split digits,
# identity normalisation, no whitespace collapsing, dummy prefix, <unk>=0 <s>=1 </s>=2, no pad).
# `<|eot|>` is NOT a user-defined symbol: it is plain text to the tokenizer.
#
# Training text: English text of the Character-LLM authors (CC BY-NC 4.0; profiles from Wikipedia)
# in ../shared/data/character-llm (override with CHARACTER_LLM_DATA=...): every line of
# seed_data/profiles/*.txt, then the `content` of every turn in
# gen_results/interview_turns/*/*.jsonl and of every reply in gen_results/interview_single/*/*.json,
# one line per line of text, files in sorted order. The text goes to weights/tiny-corpus/ (not
# committed); the model to weights/tiny/tokenizer.model (committed, with weights/tiny/NOTICE).
#
# Reproducible: no sampling or shuffling (--input_sentence_size above the line count,
# --shuffle_input_sentence=false) and relative paths only (the trainer records its input path and
# model prefix inside the .model file), so a re-run gives a byte-identical file.
#
# Needs Debian's `sentencepiece` package (spm_train) and node.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="${CHARACTER_LLM_DATA:-../shared/data/character-llm}"
CORPUS_DIR=weights/tiny-corpus
CORPUS="$CORPUS_DIR/corpus.txt"
OUT_DIR=weights/tiny

command -v spm_train >/dev/null || { echo "spm_train not found (apt-get install sentencepiece)" >&2; exit 1; }
[ -d "$DATA/seed_data/profiles" ] || { echo "$DATA/seed_data/profiles: not found (set CHARACTER_LLM_DATA)" >&2; exit 1; }

mkdir -p "$CORPUS_DIR" "$OUT_DIR"

node - "$DATA" "$CORPUS" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [data, out] = process.argv.slice(2);
const lines = [];
const addText = (text) => {
  for (const line of String(text).split(/\r?\n/)) if (line.trim() !== '') lines.push(line);
};
// Sorted listings of <dir>/*/<files ending in ext> (or <dir>/<files> when flat).
const sorted = (xs) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const filesIn = (dir, ext) => sorted(fs.readdirSync(dir)).filter((f) => f.endsWith(ext)).map((f) => path.join(dir, f));
const filesInSubdirs = (dir, ext) => sorted(fs.readdirSync(dir)).flatMap((d) => filesIn(path.join(dir, d), ext));

for (const f of filesIn(path.join(data, 'seed_data/profiles'), '.txt')) addText(fs.readFileSync(f, 'utf8'));
// interview_turns: {content: [{turn_content: [{role, action, content}]}]} per line
for (const f of filesInSubdirs(path.join(data, 'gen_results/interview_turns'), '.jsonl')) {
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    for (const turn of JSON.parse(line).content) for (const u of turn.turn_content) addText(u.content);
  }
}
// interview_single: [{question, reply: {content} | [{content}]}]
for (const f of filesInSubdirs(path.join(data, 'gen_results/interview_single'), '.json')) {
  for (const e of JSON.parse(fs.readFileSync(f, 'utf8'))) {
    for (const r of Array.isArray(e.reply) ? e.reply : [e.reply]) addText(r.content);
  }
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`${out}: ${lines.length} lines, ${Buffer.byteLength(lines.join('\n') + '\n')} bytes`);
EOF

# No --user_defined_symbols: `<|eot|>` stays plain text.
spm_train \
  --input="$CORPUS" \
  --model_prefix="$CORPUS_DIR/tokenizer" \
  --model_type=bpe \
  --byte_fallback=true \
  --split_digits=true \
  --allow_whitespace_only_pieces=true \
  --remove_extra_whitespaces=false \
  --normalization_rule_name=identity \
  --add_dummy_prefix=true \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --character_coverage=0.99995 \
  --vocab_size=4000 \
  --input_sentence_size=100000000 \
  --shuffle_input_sentence=false \
  > "$CORPUS_DIR/spm_train.log" 2>&1 || { tail -20 "$CORPUS_DIR/spm_train.log" >&2; exit 1; }

cp "$CORPUS_DIR/tokenizer.model" "$OUT_DIR/tokenizer.model"
echo "$OUT_DIR/tokenizer.model: $(wc -c < "$OUT_DIR/tokenizer.model") bytes, sha256 $(sha256sum "$OUT_DIR/tokenizer.model" | cut -d' ' -f1)"
