/**
 * Re-saves a checkpoint's weights in bf16 (round to nearest even) into another model directory:
 * config.json + model.safetensors are replaced there, other files (tokenizer, NOTICE) are kept.
 *   npx tsx scripts/save-bf16.ts FROM_DIR TO_DIR
 */
import { loadLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { loadLlamaWeightsCpu, saveLlamaCheckpointCpu } from '../src/formats/hf-checkpoint.ts';

async function main() {
  const [from, to] = process.argv.slice(2);
  if (!from || !to) throw new Error('usage: save-bf16.ts FROM_DIR TO_DIR');
  const cfg = loadLlamaConfig(from);
  await saveLlamaCheckpointCpu(to, cfg, loadLlamaWeightsCpu(from, cfg, { dtype: 'f32' }), 'bf16');
  console.log(`${to}: bf16 weights of ${from}`);
}

main();
