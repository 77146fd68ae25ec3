#!/usr/bin/python3
"""Check lmsparse's interop layouts with PyTorch (Debian's python3-torch; bench only).

usage: /usr/bin/python3 bench/interop_torch.py DENSE CSR BITMASK DENSE24 BITMASK24

DENSE/CSR/BITMASK: one model pruned with the same flags to --format dense, csr and bitmask;
DENSE24/BITMASK24: pruned --pattern 2:4 to dense and 24bitmask. It checks that
  - torch.sparse_csr_tensor takes every CSR tensor's parts as they are and to_dense() equals dense;
  - compressed-tensors' documented sparse-bitmask compression of the dense tensor (mask = t != 0,
    values = t[mask], numpy.packbits(mask, axis=-1, bitorder="little"), row offsets = exclusive
    cumsum) gives lmsparse's bytes;
  - its documented sparse-24-bitmask compression (top-2 |t| per group of 4 along the last
    dimension via torch.topk, values reshaped [rows, cols/2]) gives lmsparse's bytes, counting
    the groups where torch's tie order picks other zeros than lmsparse (both decode the same).
"""
import json, struct, sys
import numpy as np
import torch

DT = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U16": np.uint16, "U8": np.uint8}

def read(d):
    with open(d + "/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, t in h.items():
        if k == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[k] = np.frombuffer(data[b:e], dtype=DT[t["dtype"]]).reshape(t["shape"]).copy()
    return out

dense, csr, bm, dense24, bm24 = (read(d) for d in sys.argv[1:6])
n_csr = 0
for k in [k[:-len(".values")] for k in csr if k.endswith(".values")]:
    crow, col, val = (torch.from_numpy(csr[k + s]) for s in (".crow_indices", ".col_indices", ".values"))
    w = torch.sparse_csr_tensor(crow, col, val, size=csr[k + ".shape"].tolist())
    assert torch.equal(w.to_dense(), torch.from_numpy(dense[k])), k
    n_csr += 1
print(f"csr: {n_csr} tensors load in torch {torch.__version__} as written "
      f"(index dtypes {sorted({str(csr[k].dtype) for k in csr if k.endswith('_indices')})}) and equal dense")

def packbits(mask):
    return np.packbits(mask.numpy(), axis=-1, bitorder="little")

n_bm = 0
for mod in [k[:-len(".compressed")] for k in bm if k.endswith(".compressed")]:
    t = torch.from_numpy(dense[mod + ".weight"])
    mask = t != 0
    counts = mask.sum(dim=-1)
    offs = torch.cumsum(counts, 0) - counts
    assert np.array_equal(t[mask].numpy().view(np.uint32), bm[mod + ".compressed"].view(np.uint32)), mod
    assert np.array_equal(packbits(mask), bm[mod + ".bitmask"]), mod
    assert np.array_equal(offs.numpy(), bm[mod + ".row_offsets"]), mod
    assert bm[mod + ".shape"].tolist() == list(t.shape), mod
    n_bm += 1
print(f"sparse-bitmask: {n_bm} tensors byte-identical to the documented compression")

n24 = ties = groups = 0
for mod in [k[:-len(".compressed")] for k in bm24 if k.endswith(".compressed")]:
    t = torch.from_numpy(dense24[mod + ".weight"])
    rows, cols = t.shape
    g = t.reshape(-1, 4)
    idx = g.abs().topk(2, dim=1).indices
    mask = torch.zeros_like(g, dtype=torch.bool).scatter_(1, idx, True).reshape(rows, cols)
    vals = t[mask].reshape(rows, cols // 2)
    ours = bm24[mod + ".bitmask"]
    theirs = packbits(mask)
    ours_mask = np.unpackbits(ours, axis=-1, count=cols, bitorder="little").astype(bool)
    differ = (ours_mask.reshape(-1, 4) != mask.numpy().reshape(-1, 4)).any(axis=1)
    ties += int(differ.sum())
    groups += differ.size
    if not differ.any():
        assert np.array_equal(theirs, ours), mod
        assert np.array_equal(vals.numpy().view(np.uint32), bm24[mod + ".compressed"].view(np.uint32)), mod
    dec = torch.zeros(rows, cols, dtype=t.dtype)
    dec[torch.from_numpy(ours_mask)] = torch.from_numpy(bm24[mod + ".compressed"]).flatten()
    assert torch.equal(dec, t), mod
    assert bm24[mod + ".shape"].tolist() == [[rows], [cols]], mod
    n24 += 1
print(f"sparse-24-bitmask: {n24} tensors; decompress as compressed-tensors does = dense; "
      f"{ties} of {groups} groups pick other zeros than torch.topk (ties), the rest byte-identical")
