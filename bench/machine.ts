/** Facts about the machine a benchmark ran on, for its report: one place for each. */
import { readFileSync, realpathSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';

/** Which BLAS Debian's torch loads (libblas.so.3 is an alternatives link). */
export function debianBlas(): string {
  try {
    const real = realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3');
    if (real.includes('openblas-pthread')) return 'OpenBLAS, pthread build (libopenblas0-pthread)';
    if (real.includes('openblas')) return 'OpenBLAS';
    if (real.includes('blis')) return 'BLIS';
    return `reference BLAS (${real})`;
  } catch {
    return 'unknown BLAS';
  }
}

/** CPU model × cores, memory, OS and Node, in one line. */
export function describeMachine(): string {
  const c = cpuInfo();
  return `CPU ${c.model} × ${c.cores}; ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; ${platform()} ${release()}; Node ${process.version}`;
}

export interface CpuInfo {
  model: string;
  cores: number;
  /** Nominal clock: "@ x.xxGHz" of the model name when it has one, else /proc/cpuinfo's "cpu MHz" (the TSC rate under a hypervisor). */
  ghz: number;
  ghzSource: string;
  flags: string[];
}

export function cpuInfo(): CpuInfo {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: node's view only
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const model = field('model name') ?? cpus()[0]?.model ?? 'unknown CPU';
  const named = /@\s*([\d.]+)\s*GHz/.exec(model);
  const mhz = Number(field('cpu MHz') ?? cpus()[0]?.speed ?? 0);
  return {
    model,
    cores: cpus().length,
    ghz: named ? Number(named[1]) : mhz / 1000,
    ghzSource: named ? 'the model name' : '/proc/cpuinfo "cpu MHz"',
    flags: (field('flags') ?? '').split(/\s+/).filter(Boolean),
  };
}

export interface FmaPeak {
  gflops: number;
  /** The formula with its numbers, for the report. */
  derivation: string;
}

/**
 * f32 FMA peak = cores × GHz × lanes × FMA units per core × 2 (an FMA is two flops). Lanes from
 * the flags: 16 with avx512f, 8 with avx2 + fma, 4 otherwise (SSE, no FMA: counted as mul + add).
 * Units per core cannot be read from /proc/cpuinfo: 2 for the AVX-512 Xeons (ports 0 and 5 on
 * Skylake-SP and later Gold/Platinum parts) and for AVX2 cores since Haswell; pass `fmaUnits` to
 * override. An upper bound: AVX-512 clocks below the nominal rate on most parts.
 */
export function fmaPeak(cpu: CpuInfo, fmaUnits?: number): FmaPeak {
  const has = (f: string) => cpu.flags.includes(f);
  const lanes = has('avx512f') ? 16 : has('avx2') && has('fma') ? 8 : 4;
  const isa = lanes === 16 ? 'AVX-512' : lanes === 8 ? 'AVX2+FMA' : 'SSE';
  const units = fmaUnits ?? (lanes === 4 ? 1 : 2);
  const gflops = cpu.cores * cpu.ghz * lanes * units * 2;
  return {
    gflops,
    derivation: `${cpu.cores} cores × ${cpu.ghz.toFixed(2)} GHz (${cpu.ghzSource}) × ${lanes} f32 lanes (${isa}, from the cpuinfo flags) × ${units} FMA units per core (${fmaUnits === undefined ? 'assumed' : 'given'}) × 2 flops per FMA = ${gflops.toFixed(0)} GFLOP/s`,
  };
}
