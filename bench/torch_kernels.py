"""PyTorch's side of bench/report.ts's kernel benchmarks: a worker that reads one JSON request per
line on stdin and answers one JSON line on stdout, so the report can alternate ours and PyTorch
per repetition without restarting Python. f32 throughout; on the CUDA device when torch has one
(`--device auto`), else the CPU with --threads threads (Debian's python3-torch, BLAS as installed).

    /usr/bin/python3 bench/torch_kernels.py --threads 2 [--device auto|cpu|cuda]

Requests (shapes as in the report; M rows, N output features, K input features, W [N, K]):
    {"cmd": "info"}                                   -> torch version, device, BLAS, threads
    {"cmd": "prepare", "op": "matmul", "dir": "fwd|bwd_input|bwd_weight", "M":, "N":, "K":}
    {"cmd": "prepare", "op": "attention_fwd|attention_bwd", "B":, "T":, "nH":, "nKV":, "hd":}
    {"cmd": "prepare", "op": "rmsnorm_fwd|rmsnorm_bwd", "rows":, "cols":}
    {"cmd": "prepare", "op": "rope_fwd|rope_bwd", "rows":, "T":, "nH":, "hd":}
    {"cmd": "prepare", "op": "swiglu_fwd|swiglu_bwd", "rows":, "width":}
    {"cmd": "prepare", "op": "copy", "bytes":}        -> memory bandwidth probe (dst.copy_(src))
        each: builds the inputs, runs once (warm-up) and picks how many calls one measurement makes
        (enough for ~50 ms); answers {"calls": n}
    {"cmd": "time"}                                   -> {"seconds": s} per call, one measurement
The ops are written as the model in bench/torch_llama.py writes them (rms_norm, rotate-half RoPE,
silu(g) * u, causal attention by matmul + masked softmax: torch 1.13 has no fused attention);
a backward (_bwd) is autograd.grad of the forward's graph, built once and kept (retain_graph).
"""
import argparse, json, math, sys, time
import torch


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Worker:
    def __init__(self, device, threads):
        self.dev = torch.device(device)
        self.threads = threads
        self.fn = None
        self.calls = 1

    def sync(self):
        if self.dev.type == 'cuda':
            torch.cuda.synchronize()

    def randn(self, *shape, requires_grad=False):
        g = torch.Generator().manual_seed(1)
        return torch.randn(*shape, generator=g).to(self.dev).requires_grad_(requires_grad)

    def build(self, r):
        op = r['op']
        if op == 'matmul':
            M, N, K = r['M'], r['N'], r['K']
            w = self.randn(N, K) * 0.05
            if r['dir'] == 'fwd':
                x = self.randn(M, K)
                return lambda: x @ w.T
            if r['dir'] == 'bwd_input':
                dy = self.randn(M, N)
                return lambda: dy @ w
            dy, x = self.randn(M, N), self.randn(M, K)
            return lambda: dy.T @ x
        if op in ('attention_fwd', 'attention_bwd'):
            B, T, nH, nKV, hd = r['B'], r['T'], r['nH'], r['nKV'], r['hd']
            grad = op == 'attention_bwd'
            q = self.randn(B, nH, T, hd, requires_grad=grad)
            k = self.randn(B, nKV, T, hd, requires_grad=grad)
            v = self.randn(B, nKV, T, hd, requires_grad=grad)
            mask = torch.full((T, T), float('-inf'), device=self.dev).triu(1)
            rep = nH // nKV

            def fwd():
                kk, vv = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
                s = (q @ kk.transpose(2, 3)) / math.sqrt(hd) + mask
                return s.softmax(-1) @ vv
            if not grad:
                return lambda: fwd()
            out = fwd()
            dout = self.randn(*out.shape)
            # The backward alone: the graph is kept and re-run (retain_graph) on every call.
            return lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
        if op.startswith(('rmsnorm_', 'rope_', 'swiglu_')):
            grad = op.endswith('_bwd')
            if op.startswith('rmsnorm_'):
                ins = (self.randn(r['rows'], r['cols'], requires_grad=grad), self.randn(r['cols'], requires_grad=grad))
                f = lambda: rms_norm(ins[0], ins[1], 1e-5)
            elif op.startswith('rope_'):
                rows, T, nH, hd = r['rows'], r['T'], r['nH'], r['hd']
                ins = (self.randn(rows // T, T, nH, hd, requires_grad=grad),)
                inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
                fr = torch.outer(torch.arange(T).float(), inv)
                emb = torch.cat((fr, fr), dim=-1).to(self.dev)
                cos, sin = emb.cos(), emb.sin()
                f = lambda: (lambda q: q * cos + rotate_half(q) * sin)(ins[0].transpose(1, 2))
            else:
                ins = (self.randn(r['rows'], r['width'], requires_grad=grad), self.randn(r['rows'], r['width'], requires_grad=grad))
                f = lambda: torch.nn.functional.silu(ins[0]) * ins[1]
            if not grad:
                return f
            out = f()
            dout = self.randn(*out.shape)
            return lambda: torch.autograd.grad(out, ins, dout, retain_graph=True)
        if op == 'copy':
            n = r['bytes'] // 4
            src, dst = self.randn(n), torch.empty(n, device=self.dev)
            return lambda: dst.copy_(src)
        raise ValueError(f'unknown op {op}')

    def once(self, n):
        self.sync()
        t0 = time.perf_counter()
        with torch.no_grad() if not getattr(self, 'needs_grad', False) else torch.enable_grad():
            for _ in range(n):
                self.fn()
        self.sync()
        return time.perf_counter() - t0

    def handle(self, r):
        if r['cmd'] == 'info':
            cfg = torch.__config__.show().lower()
            return {'torch': torch.__version__, 'device': str(self.dev), 'threads': torch.get_num_threads(),
                    'device_name': torch.cuda.get_device_name(0) if self.dev.type == 'cuda' else None,
                    'cuda': torch.version.cuda, 'blas_info': 'mkl' if 'mkl' in cfg and 'blas_info=mkl' in cfg else 'generic (the system libblas.so.3)'}
        if r['cmd'] == 'prepare':
            self.fn = None
            if self.dev.type == 'cuda':
                torch.cuda.empty_cache()
            self.needs_grad = r['op'].endswith('_bwd')
            self.fn = self.build(r)
            one = max(self.once(1), 1e-6)  # warm-up
            one = max(self.once(1), 1e-6)
            self.calls = max(1, min(10000, math.ceil(0.05 / one)))
            return {'calls': self.calls}
        if r['cmd'] == 'time':
            return {'seconds': self.once(self.calls) / self.calls}
        raise ValueError(f'unknown cmd {r["cmd"]}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default='auto')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if a.device == 'auto' else a.device
    w = Worker(device, a.threads)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = w.handle(json.loads(line))
        except Exception as e:  # answered, so the report can name the failing shape and go on
            out = {'error': f'{type(e).__name__}: {e}'}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
