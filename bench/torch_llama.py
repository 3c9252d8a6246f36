"""PyTorch baselines for bench/decode.ts, bench/train.ts and bench/report.ts: the same LLaMA (HF conventions), f32,
on the CPU (or CUDA, --device), with Debian's /usr/bin/python3 (python3-torch); prints one JSON line. Reads the model
directory's config.json and model.safetensors itself (no transformers / safetensors on Debian).

    /usr/bin/python3 bench/torch_llama.py weights/tiny --prompt-tokens 64 --new-tokens 128 --threads 2
        greedy decode with a KV cache, batch 1
    /usr/bin/python3 bench/torch_llama.py weights/tiny --train --batch 8 --seq 256 --steps 5 --threads 2 [--lora-rank R]
        training steps: forward, mean cross-entropy, backward, clip_grad_norm_(1.0), AdamW; with
        --lora-rank, a LoRA adapter (alpha 2R, dropout 0.05, PEFT's init) on all seven projections
        of every layer is trained and the base is frozen, as bench/train.ts --lora-rank does
    --device auto|cpu|cuda: auto takes CUDA when torch has it (then --threads only sets the host's)
The JSON line carries peak memory: the process's peak RSS on the CPU (Python and torch included),
torch.cuda.max_memory_allocated on CUDA.
"""
import argparse, json, math, resource, struct, time
import numpy as np
import torch


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        a, b = info['data_offsets']
        raw = data[a:b]
        if info['dtype'] == 'F32':
            arr = np.frombuffer(raw, dtype=np.float32)
        elif info['dtype'] == 'BF16':
            arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f'{path}: unsupported dtype {info["dtype"]}')
        out[name] = torch.from_numpy(arr.copy()).reshape(info['shape'])
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Llama:
    def __init__(self, cfg, w, device='cpu'):
        w = {k: v.to(device) for k, v in w.items()}
        self.cfg, self.w = cfg, w
        self.H = cfg['hidden_size']; self.nH = cfg['num_attention_heads']
        self.nKV = cfg.get('num_key_value_heads', self.nH); self.hd = self.H // self.nH
        self.eps = cfg['rms_norm_eps']; self.L = cfg['num_hidden_layers']
        inv = 1.0 / (cfg.get('rope_theta', 10000.0) ** (torch.arange(0, self.hd, 2).float() / self.hd))
        t = torch.arange(cfg['max_position_embeddings']).float()
        f = torch.outer(t, inv); emb = torch.cat((f, f), dim=-1)
        self.cos, self.sin = emb.cos().to(device), emb.sin().to(device)
        self.lm = w.get('lm_head.weight', w['model.embed_tokens.weight'])

    def lin(self, h, name):
        """h @ W.T, plus the LoRA path (dropout(h) @ A.T @ B.T · alpha/r) when W has an adapter."""
        y = h @ self.w[name].T
        ab = self.lora.get(name) if hasattr(self, 'lora') else None
        if ab is not None:
            a, b, scale = ab
            y = y + (torch.nn.functional.dropout(h, 0.05, training=True) @ a.T) @ b.T * scale
        return y

    def add_lora(self, r, device):
        """PEFT's init: A kaiming-uniform (bound 1/sqrt(in)), B zero; alpha = 2r."""
        self.lora = {}
        g = torch.Generator().manual_seed(7)
        for name, w in self.w.items():
            if w.dim() == 2 and any(m in name for m in ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')):
                out_f, in_f = w.shape
                a = ((torch.rand(r, in_f, generator=g) * 2 - 1) / math.sqrt(in_f)).to(device).requires_grad_(True)
                b = torch.zeros(out_f, r, device=device).requires_grad_(True)
                self.lora[name] = (a, b, 2.0)
        return [t for a, b, _ in self.lora.values() for t in (a, b)]

    def train_forward(self, ids):
        """Logits [B, T, V] of a batch of full sequences (causal, no cache), differentiable."""
        w = self.w
        B, T = ids.shape
        x = w['model.embed_tokens.weight'][ids]
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float('-inf'), device=x.device).triu(1)
        rep = self.nH // self.nKV
        for l in range(self.L):
            p = f'model.layers.{l}.'
            h = rms_norm(x, w[p + 'input_layernorm.weight'], self.eps)
            q = (self.lin(h, p + 'self_attn.q_proj.weight')).view(B, T, self.nH, self.hd).transpose(1, 2)
            k = (self.lin(h, p + 'self_attn.k_proj.weight')).view(B, T, self.nKV, self.hd).transpose(1, 2)
            v = (self.lin(h, p + 'self_attn.v_proj.weight')).view(B, T, self.nKV, self.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            kk, vv = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            s = (q @ kk.transpose(2, 3)) / math.sqrt(self.hd) + mask
            a = (s.softmax(-1) @ vv).transpose(1, 2).reshape(B, T, self.H)
            x = x + self.lin(a, p + 'self_attn.o_proj.weight')
            h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], self.eps)
            x = x + self.lin(torch.nn.functional.silu(self.lin(h, p + 'mlp.gate_proj.weight')) * self.lin(h, p + 'mlp.up_proj.weight'), p + 'mlp.down_proj.weight')
        x = rms_norm(x, w['model.norm.weight'], self.eps)
        return x @ self.lm.T

    @torch.no_grad()
    def forward(self, ids, cache, pos0):
        w, T = self.w, len(ids)
        x = w['model.embed_tokens.weight'][torch.tensor(ids, device=self.cos.device)]
        cos, sin = self.cos[pos0:pos0 + T], self.sin[pos0:pos0 + T]
        mask = torch.full((T, pos0 + T), float('-inf'), device=x.device).triu(pos0 + 1)
        for l in range(self.L):
            p = f'model.layers.{l}.'
            h = rms_norm(x, w[p + 'input_layernorm.weight'], self.eps)
            q = (h @ w[p + 'self_attn.q_proj.weight'].T).view(T, self.nH, self.hd).transpose(0, 1)
            k = (h @ w[p + 'self_attn.k_proj.weight'].T).view(T, self.nKV, self.hd).transpose(0, 1)
            v = (h @ w[p + 'self_attn.v_proj.weight'].T).view(T, self.nKV, self.hd).transpose(0, 1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if l in cache:
                k = torch.cat((cache[l][0], k), dim=1); v = torch.cat((cache[l][1], v), dim=1)
            cache[l] = (k, v)
            rep = self.nH // self.nKV
            kk, vv = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
            s = (q @ kk.transpose(1, 2)) / math.sqrt(self.hd) + mask
            a = (s.softmax(-1) @ vv).transpose(0, 1).reshape(T, self.H)
            x = x + a @ w[p + 'self_attn.o_proj.weight'].T
            h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], self.eps)
            g = h @ w[p + 'mlp.gate_proj.weight'].T
            u = h @ w[p + 'mlp.up_proj.weight'].T
            x = x + (torch.nn.functional.silu(g) * u) @ w[p + 'mlp.down_proj.weight'].T
        x = rms_norm(x[-1:], w['model.norm.weight'], self.eps)
        return (x @ self.lm.T)[0]


def peak_mib(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model'); ap.add_argument('--prompt-tokens', type=int, default=64)
    ap.add_argument('--new-tokens', type=int, default=128); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--train', action='store_true'); ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--seq', type=int, default=256); ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--lora-rank', type=int, default=0); ap.add_argument('--device', default='auto')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(('cuda' if torch.cuda.is_available() else 'cpu') if a.device == 'auto' else a.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    cfg = json.load(open(f'{a.model}/config.json'))
    m = Llama(cfg, load_safetensors(f'{a.model}/model.safetensors'), device)
    common = {'torch': torch.__version__, 'threads': a.threads, 'device': str(device),
              'device_name': torch.cuda.get_device_name(0) if device.type == 'cuda' else None}
    if a.train:
        if a.lora_rank:
            params = m.add_lora(a.lora_rank, device)
        else:
            params = list(m.w.values())
            for p in params:
                p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
        g = torch.Generator().manual_seed(0)
        # seq + 1 ids per row: seq inputs and seq targets, as bench/train.ts trains on seq tokens a row.
        ids = torch.randint(3, cfg['vocab_size'], (a.batch, a.seq + 1), generator=g).to(device)
        times = []
        for step in range(a.steps + 1):
            sync(); t0 = time.perf_counter()
            logits = m.train_forward(ids[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
            sync()
            if step > 0:
                times.append(time.perf_counter() - t0)
        times.sort()
        print(json.dumps({'train_tok_s': a.batch * a.seq / times[len(times) // 2], 'batch': a.batch, 'seq': a.seq,
                          'lora_rank': a.lora_rank or None, 'peak_mib': peak_mib(device), **common}))
        return
    ids = [1] + [(i * 37) % (cfg['vocab_size'] - 3) + 3 for i in range(a.prompt_tokens - 1)]
    cache = {}
    m.forward(ids[:8], {}, 0)  # warm-up (allocator, thread pool)
    sync(); t0 = time.perf_counter(); logits = m.forward(ids, cache, 0); sync(); t1 = time.perf_counter()
    pos = len(ids)
    for _ in range(a.new_tokens):
        nxt = int(logits.argmax()); logits = m.forward([nxt], cache, pos); pos += 1
    sync(); t2 = time.perf_counter()
    print(json.dumps({'prefill_tok_s': a.prompt_tokens / (t1 - t0), 'decode_tok_s': a.new_tokens / (t2 - t1),
                      'peak_mib': peak_mib(device), **common}))


if __name__ == '__main__':
    main()
