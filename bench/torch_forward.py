#!/usr/bin/env python3
"""Times the same forward pass as bench/forward in PyTorch (Debian's
python3-torch): reads the checkpoint's safetensors and config.json itself
(no transformers), runs windows of --ctx tokens at --threads threads and
prints tokens/s and the mean |logit| of the first window as a checksum.

    python3 bench/torch_forward.py --model DIR --ctx 512 --threads 2 --iters 5
"""
import argparse, json, math, os, struct, sys, time

# Thread counts must be set before torch (and its BLAS) load: torch's
# set_num_threads does not reach the OpenBLAS that Debian's torch calls for
# matrix products (BLAS_INFO=generic, resolved through libblas.so.3).
_threads = "1"
for i, a in enumerate(sys.argv):
    if a == "--threads" and i + 1 < len(sys.argv):
        _threads = sys.argv[i + 1]
    elif a.startswith("--threads="):
        _threads = a.split("=", 1)[1]
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = _threads

import numpy as np
import torch

def load(dirname):
    tensors = {}
    files = [f for f in sorted(os.listdir(dirname)) if f.endswith(".safetensors")]
    for fn in files:
        with open(os.path.join(dirname, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        for name, t in header.items():
            if name == "__metadata__":
                continue
            b, e = t["data_offsets"]
            raw = np.frombuffer(data[b:e], dtype={"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[t["dtype"]])
            if t["dtype"] == "BF16":
                raw = (raw.astype(np.uint32) << 16).view(np.float32)
            tensors[name] = torch.from_numpy(raw.astype(np.float32).reshape(t["shape"]))
    with open(os.path.join(dirname, "config.json")) as f:
        cfg = json.load(f)
    return cfg, tensors

def gpt2(cfg, w, ids):
    p = "transformer." if "transformer.wte.weight" in w else ""
    T = ids.shape[0]; d = cfg["n_embd"]; H = cfg["n_head"]; hd = d // H; eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][:T]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["n_layer"]):
        q = f"{p}h.{l}."
        h = torch.nn.functional.layer_norm(x, (d,), w[q + "ln_1.weight"], w[q + "ln_1.bias"], eps)
        qkv = torch.addmm(w[q + "attn.c_attn.bias"], h, w[q + "attn.c_attn.weight"])
        Q, K, V = qkv.split(d, dim=1)
        Q = Q.view(T, H, hd).transpose(0, 1); K = K.view(T, H, hd).transpose(0, 1); V = V.view(T, H, hd).transpose(0, 1)
        att = torch.softmax(Q @ K.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ V).transpose(0, 1).reshape(T, d)
        x = x + torch.addmm(w[q + "attn.c_proj.bias"], o, w[q + "attn.c_proj.weight"])
        h = torch.nn.functional.layer_norm(x, (d,), w[q + "ln_2.weight"], w[q + "ln_2.bias"], eps)
        h = torch.nn.functional.gelu(torch.addmm(w[q + "mlp.c_fc.bias"], h, w[q + "mlp.c_fc.weight"]), approximate="tanh")
        x = x + torch.addmm(w[q + "mlp.c_proj.bias"], h, w[q + "mlp.c_proj.weight"])
    x = torch.nn.functional.layer_norm(x, (d,), w[p + "ln_f.weight"], w[p + "ln_f.bias"], eps)
    return x @ w[p + "wte.weight"].T

def llama(cfg, w, ids):
    T = ids.shape[0]; d = cfg["hidden_size"]; H = cfg["num_attention_heads"]; KV = cfg.get("num_key_value_heads", H)
    hd = d // H; eps = cfg.get("rms_norm_eps", 1e-6); theta = cfg.get("rope_theta", 10000.0)
    def rms(x, g): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv); ang = torch.cat([ang, ang], -1)
    cos, sin = ang.cos(), ang.sin()
    def rope(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin
    x = w["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, hd).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, hd).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, hd).transpose(0, 1)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // KV, 0); v = v.repeat_interleave(H // KV, 0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        x = x + (att @ v).transpose(0, 1).reshape(T, d) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)
        x = x + g @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True); ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1); ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, w = load(a.model)
    fwd = gpt2 if cfg["model_type"] == "gpt2" else llama
    vocab = cfg["vocab_size"]
    ids = torch.tensor([(i * 7919 + 13) % vocab for i in range(a.ctx)])
    with torch.inference_mode():
        logits = fwd(cfg, w, ids)  # warm-up, also the checksum
        t0 = time.perf_counter()
        for _ in range(a.iters):
            fwd(cfg, w, ids)
        secs = time.perf_counter() - t0
    blas = "openblas" if os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3").find("openblas") >= 0 else "generic"
    print(f"pytorch {torch.__version__} ({blas} BLAS) threads={a.threads} ctx={a.ctx}: {a.iters * a.ctx / secs:.1f} tokens/s "
          f"({secs / a.iters:.3f} s/window), mean|logit| {logits.abs().mean().item():.6f}")

if __name__ == "__main__":
    main()
