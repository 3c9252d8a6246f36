#!/usr/bin/env bash
# Trains the embedded default model weights/tiny from scratch, reproducibly (fixed seeds):
#   1. the 4,000-piece tokenizer (scripts/make-tiny-tokenizer.sh; committed, re-running gives the same file)
#   2. the data (scripts/build-tiny-data.ts): a pretraining corpus of every profile paragraph and
#      interview turn in the Character-LLM release, and examples/prompted_Beethoven.jsonl
#   3. a random 1.8M-parameter LLaMA (scripts/make-tiny-model.ts)
#   4. language pretraining with `wgpu-char train` on the corpus (prompt "", every token a target)
#   5. SFT on the Beethoven prompted set, the paper's format and masking
#   6. the result (config.json + bf16 model.safetensors) copied into weights/tiny
# Needs ../shared (the Character-LLM data) and about an hour on a 2-core machine with lavapipe.
#   bash scripts/train-tiny.sh [RUN_DIR]     (default runs/tiny; resumable: re-run after a stop)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-runs/tiny}"
SHARED="${SHARED:-../shared}"
mkdir -p "$RUN"
wgpu() { node bin/wgpu-char.js "$@"; }

if [ -d "$SHARED/data/character-llm" ]; then
  bash scripts/make-tiny-tokenizer.sh
  npx tsx scripts/build-tiny-data.ts --shared "$SHARED"
fi
[ -f "$RUN/init/model.safetensors" ] || { npx tsx scripts/make-tiny-model.ts --out "$RUN/init" --seed 1234 && cp weights/tiny/tokenizer.model "$RUN/init/"; }

# Stage 1: pretraining, a bounded number of steps (~60% of an epoch) to fit the hour; a checkpoint
# every 100 steps so a stopped run resumes (re-run this script).
resume1=(); ls -d "$RUN"/pretrain/checkpoint-* >/dev/null 2>&1 && resume1=(--resume "$(ls -d "$RUN"/pretrain/checkpoint-* | sort -t- -k2 -n | tail -1)")
[ -f "$RUN/pretrain/model.safetensors" ] || wgpu train --data weights/tiny-corpus/pretrain.jsonl --model "$RUN/init" --out "$RUN/pretrain" \
  --dtype f32 --no-checkpointing --max-len 256 --batch-size 8 --grad-accum 1 --max-steps 700 \
  --lr 3e-3 --warmup-ratio 0.02 --weight-decay 0.1 --lr-scheduler cosine --eval-ratio 0.01 --seed 42 --save-steps 100 "${resume1[@]}"

# Stage 2: SFT on the Beethoven set.
resume2=(); ls -d "$RUN"/sft/checkpoint-* >/dev/null 2>&1 && resume2=(--resume "$(ls -d "$RUN"/sft/checkpoint-* | sort -t- -k2 -n | tail -1)")
[ -f "$RUN/sft/model.safetensors" ] || wgpu train --data examples/prompted_Beethoven.jsonl --model "$RUN/pretrain" --out "$RUN/sft" \
  --dtype f32 --no-checkpointing --max-len 512 --batch-size 4 --grad-accum 1 --epochs 3 \
  --lr 1e-3 --warmup-ratio 0.04 --weight-decay 0.1 --lr-scheduler cosine --eval-ratio 0.02 --seed 42 --save-every-epoch "${resume2[@]}"

# Ship it in bf16 (half the size; the model was trained with f32 master weights).
npx tsx scripts/save-bf16.ts "$RUN/sft" weights/tiny
cp "$RUN/sft/loss.svg" weights/tiny/loss-sft.svg; cp "$RUN/pretrain/loss.svg" weights/tiny/loss-pretrain.svg
echo "weights/tiny updated from $RUN/sft"
