#!/usr/bin/python3
"""Training-speed baseline for lmsparse's training engine: a plain GPT-2 in
float32 PyTorch (Debian's python3-torch; no transformers library) loaded from
a safetensors checkpoint directory in Hugging Face GPT-2 layout (the output of
`go run ./testdata/gen/mkmodel -arch gpt2-small -o DIR`), trained with
torch.optim.AdamW on batches of B windows of T tokens.

Usage: /usr/bin/python3 bench/train_torch.py MODEL_DIR [--batch 4] [--ctx 512]
       [--threads 2] [--steps 5] [--warmup 2] [--mode train|forward]
       [--tokens FILE] [--seed 0] [--attn auto|explicit|sdpa] [--foreach|--no-foreach]
       [--check] [--dump-ids FILE]

Model: wte + wpe; per block ln_1, fused c_attn (Conv1D layout, weight
[in, out], y = x·W + b), causal softmax attention, c_proj, ln_2, MLP c_fc,
gelu (tanh approximation), c_proj; ln_f; the head tied to wte (lm_head.weight
when the checkpoint has one and tie_word_embeddings is false). No dropout.

Loss: cross-entropy, mean over the B·(T−1) next-token predictions of a batch
(the head runs on the first T−1 positions only). Optimizer: AdamW(lr 1e-4,
betas (0.9, 0.999), eps 1e-8, weight_decay 0), no clipping, constant lr.

Windows: step s (0-based, warm-up steps included) trains on windows
(s·B + j) mod W, j = 0 … B−1, as lmsparse's train.Batch does. With --tokens
FILE (whitespace-separated ids as text, .npy, or raw little-endian with
--tokens-dtype) the windows are FILE[k·T:(k+1)·T], as train.Windows cuts
them. Without it they are random ids: token t of window k is the i-th output
(i = k·T + t, from 0) of a splitmix64 generator seeded with --seed, mod vocab:
z = seed + (i+1)·0x9E3779B97F4A7C15, z = (z ^ z>>30)·0xBF58476D1CE4E5B9,
z = (z ^ z>>27)·0x94D049BB133111EB, z ^ z>>31 (uint64, wrapping; easy to
reproduce in Go; --dump-ids writes the windows as text, one per line).

Output: JSON lines: the set-up (torch, BLAS libraries loaded, OpenBLAS core),
one line per step (wall seconds, CPU seconds of this process, and
others_cpu_s, the CPU time other processes used meanwhile: on a shared
machine keep the steps where it is near 0), then a summary with tokens/s =
steps·B·T / seconds over the timed steps, s/step and peak RSS (getrusage
ru_maxrss).

--check runs two steps only and prints the loss of each (the second after
one AdamW update) to 6 decimals with the first step's gradient norm.

Thread counts are set in the environment before torch loads: Debian's torch
multiplies through libblas.so.3 (OpenBLAS/BLIS pthreads do not follow
torch.set_num_threads). This is a benchmark, never a test."""
import argparse, json, os, struct, sys, time

_threads = "2"
for i, a in enumerate(sys.argv):
    if a == "--threads" and i + 1 < len(sys.argv):
        _threads = sys.argv[i + 1]
    elif a.startswith("--threads="):
        _threads = a.split("=", 1)[1]
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = _threads

import ctypes, math, resource

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def load(dirname):
    """config.json and every tensor of the *.safetensors files, as float32."""
    with open(os.path.join(dirname, "config.json")) as f:
        cfg = json.load(f)
    w = {}
    for fn in sorted(x for x in os.listdir(dirname) if x.endswith(".safetensors")):
        with open(os.path.join(dirname, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            for name, t in header.items():
                if name == "__metadata__":
                    continue
                a, b = t["data_offsets"]
                dt = DTYPES[t["dtype"]]
                f.seek(8 + n + a)
                raw = np.fromfile(f, dtype=dt, count=(b - a) // np.dtype(dt).itemsize)
                if t["dtype"] == "BF16":
                    raw = (raw.astype(np.uint32) << 16).view(np.float32)
                w[name.removeprefix("transformer.")] = torch.from_numpy(raw.astype(np.float32, copy=False).reshape(t["shape"]))
    return cfg, w


class Block(torch.nn.Module):
    def __init__(self, d, heads, eps, attn):
        super().__init__()
        self.d, self.heads, self.eps, self.attn = d, heads, eps, attn
        P = lambda *s: torch.nn.Parameter(torch.empty(*s))
        self.ln_1_w, self.ln_1_b, self.ln_2_w, self.ln_2_b = P(d), P(d), P(d), P(d)
        self.c_attn_w, self.c_attn_b = P(d, 3 * d), P(3 * d)
        self.attn_proj_w, self.attn_proj_b = P(d, d), P(d)
        self.c_fc_w, self.c_fc_b = P(d, 4 * d), P(4 * d)
        self.mlp_proj_w, self.mlp_proj_b = P(4 * d, d), P(d)

    names = {"ln_1.weight": "ln_1_w", "ln_1.bias": "ln_1_b", "ln_2.weight": "ln_2_w", "ln_2.bias": "ln_2_b",
             "attn.c_attn.weight": "c_attn_w", "attn.c_attn.bias": "c_attn_b",
             "attn.c_proj.weight": "attn_proj_w", "attn.c_proj.bias": "attn_proj_b",
             "mlp.c_fc.weight": "c_fc_w", "mlp.c_fc.bias": "c_fc_b",
             "mlp.c_proj.weight": "mlp_proj_w", "mlp.c_proj.bias": "mlp_proj_b"}

    def forward(self, x, mask):
        B, T, D = x.shape
        H, hd = self.heads, D // self.heads
        lin = lambda h, W, b: torch.addmm(b, h.reshape(B * T, -1), W).view(B, T, -1)
        h = F.layer_norm(x, (D,), self.ln_1_w, self.ln_1_b, self.eps)
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in lin(h, self.c_attn_w, self.c_attn_b).split(D, dim=2))
        if self.attn == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            o = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1) @ v
        x = x + lin(o.transpose(1, 2).reshape(B, T, D), self.attn_proj_w, self.attn_proj_b)
        h = F.layer_norm(x, (D,), self.ln_2_w, self.ln_2_b, self.eps)
        h = F.gelu(lin(h, self.c_fc_w, self.c_fc_b), approximate="tanh")
        return x + lin(h, self.mlp_proj_w, self.mlp_proj_b)


class GPT2(torch.nn.Module):
    def __init__(self, cfg, w, attn):
        super().__init__()
        d, L, self.eps = cfg["n_embd"], cfg["n_layer"], cfg.get("layer_norm_epsilon", 1e-5)
        self.wte, self.wpe = torch.nn.Parameter(w.pop("wte.weight")), torch.nn.Parameter(w.pop("wpe.weight"))
        self.ln_f_w, self.ln_f_b = torch.nn.Parameter(w.pop("ln_f.weight")), torch.nn.Parameter(w.pop("ln_f.bias"))
        head = w.pop("lm_head.weight", None)
        self.head = None if head is None or cfg.get("tie_word_embeddings", True) else torch.nn.Parameter(head)
        self.h = torch.nn.ModuleList(Block(d, cfg["n_head"], self.eps, attn) for _ in range(L))
        for l, blk in enumerate(self.h):
            for src, dst in Block.names.items():
                getattr(blk, dst).data = w.pop(f"h.{l}.{src}")
        w = {k: v for k, v in w.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
        assert not w, f"unused tensors: {sorted(w)[:5]}"
        n = cfg.get("n_positions", 1024)
        self.register_buffer("mask", torch.ones(n, n, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, ids):
        """Mean cross-entropy of the next-token predictions of ids [B, T]."""
        B, T = ids.shape
        x = self.wte[ids] + self.wpe[:T]
        for blk in self.h:
            x = blk(x, self.mask)
        x = F.layer_norm(x[:, :-1], (x.shape[-1],), self.ln_f_w, self.ln_f_b, self.eps)
        logits = x.reshape(B * (T - 1), -1) @ (self.wte if self.head is None else self.head).t()
        return F.cross_entropy(logits, ids[:, 1:].reshape(-1))


def splitmix64(seed, n):
    """The first n outputs of splitmix64 seeded with seed (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def windows(args, vocab, count):
    T = args.ctx
    if args.tokens:
        if args.tokens.endswith(".npy"):
            ids = np.load(args.tokens)
        elif args.tokens_dtype == "text":
            ids = np.array(open(args.tokens).read().split(), dtype=np.int64)
        else:
            ids = np.fromfile(args.tokens, dtype=np.dtype(args.tokens_dtype).newbyteorder("<"))
        W = len(ids) // T
        if W == 0:
            sys.exit(f"{args.tokens}: {len(ids)} ids, fewer than one window of {T}")
        wins = ids[: W * T].astype(np.int64).reshape(W, T)
    else:
        wins = (splitmix64(args.seed, count * T) % np.uint64(vocab)).astype(np.int64).reshape(count, T)
    if wins.min() < 0 or wins.max() >= vocab:
        sys.exit(f"token ids outside the vocabulary ({vocab})")
    return torch.from_numpy(wins)


def batch(wins, s, B):
    return wins[[(s * B + j) % len(wins) for j in range(B)]]


def blas_info():
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if any(k in l for k in ("blas", "blis", "mkl_rt"))})
    info = {"blas_libs": libs}
    for p in libs:
        lib = ctypes.CDLL(p)
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblas_core"] = lib.openblas_get_corename().decode()
            info["openblas_threads"] = lib.openblas_get_num_threads()
    return info


def cpu_ticks():
    """(busy jiffies of the whole machine, this process's jiffies): their
    difference over a step is CPU time other processes took from it."""
    f = open("/proc/stat").readline().split()[1:]
    busy = sum(map(int, f)) - int(f[3]) - int(f[4])
    own = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    return busy, int(own[11]) + int(own[12])


def rss_mb(field="VmRSS"):
    for l in open("/proc/self/status"):
        if l.startswith(field + ":"):
            return int(l.split()[1]) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--mode", choices=("train", "forward"), default="train",
                    help="forward: the same loss under torch.no_grad(), no backward or update")
    ap.add_argument("--tokens", help="token ids (text, .npy or raw --tokens-dtype); default random windows")
    ap.add_argument("--tokens-dtype", default="text", help="text, or a numpy dtype of a raw file (uint16, int32, …)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--attn", choices=("auto", "explicit", "sdpa"), default="auto",
                    help="auto: sdpa when this torch has F.scaled_dot_product_attention (2.0+), else explicit")
    ap.add_argument("--foreach", action=argparse.BooleanOptionalAction, default=True,
                    help="AdamW's multi-tensor implementation (default on: faster on CPU)")
    ap.add_argument("--check", action="store_true", help="print the losses of two steps and exit")
    ap.add_argument("--dump-ids", help="write the windows used, one per line")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    has_sdpa = hasattr(F, "scaled_dot_product_attention")
    attn = ("sdpa" if has_sdpa else "explicit") if args.attn == "auto" else args.attn
    if attn == "sdpa" and not has_sdpa:
        sys.exit(f"torch {torch.__version__} has no scaled_dot_product_attention (2.0+)")
    t0 = time.perf_counter()
    cfg, w = load(args.model)
    model = GPT2(cfg, w, attn)
    params = list(model.parameters())
    load_s = time.perf_counter() - t0
    B, T = args.batch, args.ctx
    if T > cfg.get("n_positions", 1024):
        sys.exit(f"ctx {T} is longer than the model's {cfg.get('n_positions')} positions")
    total = 2 if args.check else args.warmup + args.steps
    wins = windows(args, cfg["vocab_size"], total * B)
    if args.dump_ids:
        with open(args.dump_ids, "w") as f:
            for s in range(total):
                for win in batch(wins, s, B).tolist():
                    f.write(" ".join(map(str, win)) + "\n")
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=args.foreach)
    head = {"torch": torch.__version__, "threads": torch.get_num_threads(), "attn": attn, "foreach": args.foreach,
            "batch": B, "ctx": T, "params": sum(p.numel() for p in params), "load_s": round(load_s, 2),
            "rss_after_load_mb": round(rss_mb(), 1), **blas_info()}
    print(json.dumps(head), flush=True)

    def step(ids, grad_norm=False):
        if args.mode == "forward":
            with torch.no_grad():
                return model(ids).item(), None
        opt.zero_grad(set_to_none=True)
        loss = model(ids)
        loss.backward()
        gn = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item() if grad_norm else None
        opt.step()
        return loss.item(), gn

    if args.check:
        for s in range(2):
            loss, gn = step(batch(wins, s, B), grad_norm=(s == 0))
            rec = {"check": args.mode, "step": s, "loss": f"{loss:.6f}"}
            if gn is not None:
                rec["grad_norm"] = f"{gn:.6f}"
            print(json.dumps(rec), flush=True)
        return
    times, hz = [], os.sysconf("SC_CLK_TCK")
    for s in range(total):
        b0, o0 = cpu_ticks()
        c, t = time.process_time(), time.perf_counter()
        loss, _ = step(batch(wins, s, B))
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        b1, o1 = cpu_ticks()
        timed = s >= args.warmup
        if timed:
            times.append(dt)
        # others_cpu_s: CPU seconds other processes ran during the step (a
        # busy machine slows the step; compare runs where it is near 0).
        print(json.dumps({"mode": args.mode, "step": s, "warmup": not timed, "loss": round(loss, 6),
                          "seconds": round(dt, 3), "tokens_per_s": round(B * T / dt, 1), "cpu_s": round(cpu, 2),
                          "others_cpu_s": round(max(0, (b1 - b0) - (o1 - o0)) / hz, 2)}), flush=True)
    sec = sum(times)
    print(json.dumps({"mode": args.mode, "summary": True, "steps": len(times), "tokens": len(times) * B * T,
                      "seconds": round(sec, 3), "tokens_per_s": round(len(times) * B * T / sec, 1),
                      "s_per_step": round(sec / len(times), 3), "min_s_per_step": round(min(times), 3),
                      "median_s_per_step": round(sorted(times)[len(times) // 2], 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True)


if __name__ == "__main__":
    main()
