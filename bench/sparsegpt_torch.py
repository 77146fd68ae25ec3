#!/usr/bin/python3
"""Reference timing for `lmsparse prune --method sparsegpt`: the SparseGPT
algorithm of Frantar & Alistarh (2023) as their reference code runs it —
float32 PyTorch, sequential over blocks, Hessian H = 2XXᵀ/n accumulated per
projection, damping 0.01·mean(diag H), blocks of 128 columns, lazy updates —
on a GPT-2 checkpoint in Hugging Face layout (safetensors read with numpy),
calibrated on N random windows of T tokens.

Usage: /usr/bin/python3 bench/sparsegpt_torch.py MODEL_DIR [--samples 64] [--len 512]
       [--sparsity 0.5] [--threads 2]
Prints the wall time of the pruning (after loading) and peak RSS.
Debian's python3-torch is enough; this is a benchmark, never a test."""
import argparse, json, math, resource, struct, time

import numpy as np
import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: only F32 here"
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"]).copy())
    return out


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))


class Block:
    """One GPT-2 block; Conv1D weights are [in, out]."""

    def __init__(self, w, p, heads, eps):
        self.w, self.p, self.heads, self.eps = w, p, heads, eps

    def lin(self, x, name):
        return x @ self.w[self.p + name + ".weight"] + self.w[self.p + name + ".bias"]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.w[self.p + name + ".weight"], self.w[self.p + name + ".bias"], self.eps)

    def __call__(self, x, hook=None):
        B, T, D = x.shape
        h = self.ln(x, "ln_1")
        if hook: hook("attn.c_attn", h)
        q, k, v = self.lin(h, "attn.c_attn").split(D, dim=2)
        hd = D // self.heads
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, D)
        if hook: hook("attn.c_proj", a)
        x = x + self.lin(a, "attn.c_proj")
        h = self.ln(x, "ln_2")
        if hook: hook("mlp.c_fc", h)
        f = gelu_new(self.lin(h, "mlp.c_fc"))
        if hook: hook("mlp.c_proj", f)
        return x + self.lin(f, "mlp.c_proj")


def fasterprune(W, H, sparsity, blocksize=128, percdamp=0.01):
    """W [out, in] float32; H [in, in]. The reference algorithm."""
    W = W.clone()
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    H[range(cols), range(cols)] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
        thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
        mask1 = tmp <= thresh
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--len", type=int, default=512)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=0, help="prune only the first N blocks (0: all)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.model + "/config.json"))
    w = load_safetensors(a.model + "/model.safetensors")
    pre = "transformer." if "transformer.wte.weight" in w else ""
    D, L, heads = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg["vocab_size"], (a.samples, a.len), generator=g)
    start = time.time()
    with torch.no_grad():
        x = w[pre + "wte.weight"][ids] + w[pre + "wpe.weight"][: a.len]
        for l in range(a.layers or L):
            t0 = time.time()
            blk = Block(w, f"{pre}h.{l}.", heads, eps)
            H, n = {}, {}
            def hook(name, inp):
                X = inp.reshape(-1, inp.shape[-1]).float()
                H.setdefault(name, torch.zeros(X.shape[1], X.shape[1]))
                H[name] += 2 * X.t() @ X  # divided by n below
                n[name] = n.get(name, 0) + X.shape[0]
            for s in range(0, a.samples, 8):  # batches of 8 windows
                blk(x[s:s + 8], hook)
            for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                key = f"{pre}h.{l}.{name}.weight"
                Wt = w[key].t().contiguous()  # [out, in]
                w[key] = fasterprune(Wt, H[name] / n[name], a.sparsity).t().contiguous()
            x = torch.cat([blk(x[s:s + 8]) for s in range(0, a.samples, 8)])
            print(f"block {l}: {time.time() - t0:.1f} s", flush=True)
    secs = time.time() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"torch {torch.__version__} sparsegpt {a.sparsity} on {a.layers or L} blocks, {a.samples}x{a.len} tokens, {a.threads} threads: {secs:.1f} s, peak RSS {rss} KB")


if __name__ == "__main__":
    main()
