/**
 * Random-weight checkpoints for the benchmarks: a config.json becomes, once, an HF checkpoint
 * directory every side can load (wgpu-char, PyTorch, `wgpu-char export` for llama.cpp).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readConfigFile, saveLlamaCheckpointCpu } from '../src/formats/hf-checkpoint.ts';
import { syntheticBase } from '../src/model/synthetic.ts';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { pcgHash } from '../src/util/hash.ts';

const ROOT = path.join(import.meta.dirname, '..');
const TOKENIZER_OF_SYNTHETIC = path.join(ROOT, 'weights/tiny/tokenizer.model');
const SEED = 7;

/**
 * A model directory for `spec`: itself, or for a config.json file a random-weight checkpoint written
 * once under bench/.cache/<name>-<hash of the config>-seed7/. Element i of tensor t is
 * d·scale + shift with d = (pcg(key ^ i) >> 8)·2^-24 − 0.5, the values of src/model/synthetic.ts.
 */
export async function modelDirOf(spec: string): Promise<{ dir: string; label: string }> {
  if (!spec.endsWith('.json')) return { dir: spec, label: spec };
  const text = readFileSync(spec, 'utf8');
  const cfg = readConfigFile(spec);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
  const dir = path.join(ROOT, 'bench/.cache', `${path.basename(spec, '.json')}-${hash}-seed${SEED}`);
  const label = `${spec} (random weights, seed ${SEED})`;
  if (existsSync(path.join(dir, 'model.safetensors')) && existsSync(path.join(dir, 'tokenizer.model'))) return { dir, label };
  console.log(`writing ${dir} (random weights for ${spec}) ...`);
  const gens = syntheticBase(cfg, SEED);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const s of llamaWeightSpecs(cfg)) {
    const g = gens.get(s.name)!;
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = ((pcgHash((g.key ^ i) >>> 0) >>> 8) * 2 ** -24 - 0.5) * g.scale + g.shift;
    tensors.set(s.name, { shape: [...s.shape], data });
  }
  mkdirSync(path.dirname(dir), { recursive: true });
  await saveLlamaCheckpointCpu(dir, cfg, tensors, 'bf16');
  copyFileSync(TOKENIZER_OF_SYNTHETIC, path.join(dir, 'tokenizer.model'));
  return { dir, label };
}
