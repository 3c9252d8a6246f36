"""PyTorch baseline for bench/decode.ts: the same LLaMA (HF conventions) decoding greedily with a
KV cache, batch 1, f32, on the CPU. Run by bench/decode.ts with Debian's /usr/bin/python3
(python3-torch); prints one JSON line. Reads the model directory's config.json and
model.safetensors itself (no transformers / safetensors packages on Debian).

    /usr/bin/python3 bench/torch_llama.py weights/tiny --prompt-tokens 64 --new-tokens 128 --threads 2
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
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(f'{a.model}/config.json'))
    m = Llama(cfg, load_safetensors(f'{a.model}/model.safetensors'))
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
