"""Export a GPT-2-shaped safetensors checkpoint (as testdata/gen/mkmodel
-arch gpt2-small writes) to plain ONNX with torch.onnx.export (opset 14,
standard operators only, no KV cache): input input_ids int64 [batch, seq],
output logits [batch, seq, vocab]; initializers keep the Hugging Face names.
The module is written here (GPT2LMHeadModel's forward: LayerNorm, Conv1D
projections, gelu_new, causal softmax attention, tied head).
Usage: /usr/bin/python3 bench/gpt2_onnx.py CHECKPOINT_DIR OUT.onnx
"""
import json
import math
import struct
import sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        assert h["dtype"] == "F32", (name, h["dtype"])
        a, b = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(h["shape"]).copy())
    return out


class Block(nn.Module):
    def __init__(self, d, heads, inner, eps):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.attn = nn.Module()
        self.attn.c_attn = Conv1D(d, 3 * d)
        self.attn.c_proj = Conv1D(d, d)
        self.mlp = nn.Module()
        self.mlp.c_fc = Conv1D(d, inner)
        self.mlp.c_proj = Conv1D(inner, d)

    def forward(self, x, mask):
        B, T, D = x.shape
        H = self.heads
        hd = D // H
        qkv = self.attn.c_attn(self.ln_1(x))
        q, k, v = qkv.split(D, dim=2)
        q = q.reshape(B, T, H, hd).transpose(1, 2)
        k = k.reshape(B, T, H, hd).transpose(1, 2)
        v = v.reshape(B, T, H, hd).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + mask
        o = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, T, D)
        x = x + self.attn.c_proj(o)
        h = self.mlp.c_fc(self.ln_2(x))
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
        return x + self.mlp.c_proj(h)


class Conv1D(nn.Module):
    def __init__(self, nin, nout):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nin, nout))
        self.bias = nn.Parameter(torch.zeros(nout))

    def forward(self, x):
        return torch.matmul(x, self.weight) + self.bias


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, L = cfg["n_embd"], cfg["n_layer"]
        eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(cfg["vocab_size"], d)
        self.transformer.wpe = nn.Embedding(cfg["n_positions"], d)
        self.transformer.h = nn.ModuleList(
            [Block(d, cfg["n_head"], cfg.get("n_inner") or 4 * d, eps) for _ in range(L)])
        self.transformer.ln_f = nn.LayerNorm(d, eps=eps)
        n = cfg["n_positions"]
        self.register_buffer("causal_mask", torch.triu(torch.full((n, n), float("-inf")), diagonal=1))

    def forward(self, input_ids):
        T = input_ids.shape[1]
        pos = torch.arange(T, dtype=torch.int64)
        x = self.transformer.wte(input_ids) + self.transformer.wpe(pos)
        mask = self.causal_mask[:T, :T]
        for b in self.transformer.h:
            x = b(x, mask)
        x = self.transformer.ln_f(x)
        return torch.matmul(x, self.transformer.wte.weight.t())


def main():
    src, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(src + "/config.json"))
    m = GPT2(cfg)
    w = read_safetensors(src + "/model.safetensors")
    missing, unexpected = m.load_state_dict(w, strict=False)
    assert missing == ["causal_mask"] and not unexpected, (missing, unexpected)
    m.eval()
    ids = torch.tensor([[(i * 7919 + 13) % cfg["vocab_size"] for i in range(8)]], dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(m, (ids,), out, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                                        "logits": {0: "batch_size", 1: "sequence_length"}},
                          opset_version=14, do_constant_folding=True)
        print("logits[0, 0, :4]", m(ids)[0, 0, :4].tolist())


if __name__ == "__main__":
    main()
