"""PyTorch baselines for bench/decode.ts and bench/train.ts: the same LLaMA (HF conventions), f32,
on the CPU, with Debian's /usr/bin/python3 (python3-torch); prints one JSON line. Reads the model
directory's config.json and model.safetensors itself (no transformers / safetensors on Debian).

    /usr/bin/python3 bench/torch_llama.py weights/tiny --prompt-tokens 64 --new-tokens 128 --threads 2
        greedy decode with a KV cache, batch 1
    /usr/bin/python3 bench/torch_llama.py weights/tiny --train --batch 8 --seq 256 --steps 5 --threads 2
        training steps: forward, mean cross-entropy, backward, clip_grad_norm_(1.0), AdamW
"""
import argparse, json, math, struct, time
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
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.H = cfg['hidden_size']; self.nH = cfg['num_attention_heads']
        self.nKV = cfg.get('num_key_value_heads', self.nH); self.hd = self.H // self.nH
        self.eps = cfg['rms_norm_eps']; self.L = cfg['num_hidden_layers']
        inv = 1.0 / (cfg.get('rope_theta', 10000.0) ** (torch.arange(0, self.hd, 2).float() / self.hd))
        t = torch.arange(cfg['max_position_embeddings']).float()
        f = torch.outer(t, inv); emb = torch.cat((f, f), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.lm = w.get('lm_head.weight', w['model.embed_tokens.weight'])

    def train_forward(self, ids):
        """Logits [B, T, V] of a batch of full sequences (causal, no cache), differentiable."""
        w = self.w
        B, T = ids.shape
        x = w['model.embed_tokens.weight'][ids]
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float('-inf')).triu(1)
        rep = self.nH // self.nKV
        for l in range(self.L):
            p = f'model.layers.{l}.'
            h = rms_norm(x, w[p + 'input_layernorm.weight'], self.eps)
            q = (h @ w[p + 'self_attn.q_proj.weight'].T).view(B, T, self.nH, self.hd).transpose(1, 2)
            k = (h @ w[p + 'self_attn.k_proj.weight'].T).view(B, T, self.nKV, self.hd).transpose(1, 2)
            v = (h @ w[p + 'self_attn.v_proj.weight'].T).view(B, T, self.nKV, self.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            kk, vv = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            s = (q @ kk.transpose(2, 3)) / math.sqrt(self.hd) + mask
            a = (s.softmax(-1) @ vv).transpose(1, 2).reshape(B, T, self.H)
            x = x + a @ w[p + 'self_attn.o_proj.weight'].T
            h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], self.eps)
            x = x + (torch.nn.functional.silu(h @ w[p + 'mlp.gate_proj.weight'].T) * (h @ w[p + 'mlp.up_proj.weight'].T)) @ w[p + 'mlp.down_proj.weight'].T
        x = rms_norm(x, w['model.norm.weight'], self.eps)
        return x @ self.lm.T

    @torch.no_grad()
    def forward(self, ids, cache, pos0):
        w, T = self.w, len(ids)
        x = w['model.embed_tokens.weight'][torch.tensor(ids)]
        cos, sin = self.cos[pos0:pos0 + T], self.sin[pos0:pos0 + T]
        mask = torch.full((T, pos0 + T), float('-inf')).triu(pos0 + 1)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model'); ap.add_argument('--prompt-tokens', type=int, default=64)
    ap.add_argument('--new-tokens', type=int, default=128); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--train', action='store_true'); ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--seq', type=int, default=256); ap.add_argument('--steps', type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(f'{a.model}/config.json'))
    m = Llama(cfg, load_safetensors(f'{a.model}/model.safetensors'))
    if a.train:
        params = list(m.w.values())
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(3, cfg['vocab_size'], (a.batch, a.seq), generator=g)
        times = []
        for step in range(a.steps + 1):
            t0 = time.perf_counter()
            logits = m.train_forward(ids[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
            if step > 0:
                times.append(time.perf_counter() - t0)
        times.sort()
        print(json.dumps({'train_tok_s': a.batch * a.seq / times[len(times) // 2], 'batch': a.batch, 'seq': a.seq,
                          'torch': torch.__version__, 'threads': a.threads}))
        return
    ids = [1] + [(i * 37) % (cfg['vocab_size'] - 3) + 3 for i in range(a.prompt_tokens - 1)]
    cache = {}
    t0 = time.perf_counter(); logits = m.forward(ids, cache, 0); t1 = time.perf_counter()
    pos = len(ids)
    for _ in range(a.new_tokens):
        nxt = int(logits.argmax()); logits = m.forward([nxt], cache, pos); pos += 1
    t2 = time.perf_counter()
    print(json.dumps({'prefill_tok_s': a.prompt_tokens / (t1 - t0), 'decode_tok_s': a.new_tokens / (t2 - t1),
                      'torch': torch.__version__, 'threads': a.threads,
                      'blas': 'openblas' if 'openblas' in torch.__config__.show().lower() else 'see torch.__config__.show()'}))


if __name__ == '__main__':
    main()
