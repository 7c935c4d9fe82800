#!/usr/bin/env python3
"""Peer reference: one epoch of mini-batch GraphSAGE training in plain PyTorch on the CPU.

Run with Debian's PyTorch (apt-get install python3-torch) as /usr/bin/python3, on a data set of
`gannet graph prepare` (gnn/graph_dataset.h: graph.safetensors, features.safetensors,
nodes.safetensors), with the settings of a gannet config:

  /usr/bin/python3 bench/torch_graphsage.py --data data/debian-graph --fanouts 15,10 \
      --batch 1024 --hidden 256 --epochs 3 --threads 2

The model is gannet's (models/graphsage.h): per layer h' = W_self h_dst + W_neigh mean(h_nbrs) + b,
ReLU and dropout between layers, cross-entropy, AdamW. The sampler is PyG's convention (fan-outs
from the seeds outwards; uniform without replacement, all neighbours when fewer), vectorised with
numpy: PyG's and DGL's C++ samplers are not Debian packages. Prints per epoch: seconds (sampling
and feature gathering included), loss, and the validation accuracy at the end; then the median.
"""
import argparse, json, resource, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def read_safetensors(path):
    """Tensors of a safetensors file as read-only numpy memory maps."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        count = (end - b) // np.dtype(dt).itemsize
        out[name] = np.memmap(path, dtype=dt, mode="r", offset=8 + n + b, shape=(count,)).reshape(e["shape"])
    return out


def sample_hop(indptr, indices, nodes, fanout, rng):
    """Per node, `fanout` distinct neighbours (all when fewer): (dst position, neighbour id) pairs."""
    start, deg = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    seg = np.repeat(np.arange(len(nodes)), deg)
    pos = np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
    nbr = indices[np.repeat(start, deg) + pos]
    if fanout > 0:  # keep the `fanout` smallest random keys of each node's list
        order = np.argsort(seg + rng.random(len(seg)), kind="stable")
        seg, nbr = seg[order], nbr[order]
        rank = np.arange(len(seg)) - np.repeat(np.cumsum(deg) - deg, deg)
        keep = rank < fanout
        seg, nbr = seg[keep], nbr[keep]
    return seg, nbr


def sample_blocks(indptr, indices, seeds, fanouts, rng):
    """Blocks from the input layer to the seeds: (num_dst, dst index, src index) and the input nodes."""
    nodes, blocks = seeds, []
    for fanout in fanouts:
        seg, nbr = sample_hop(indptr, indices, nodes, fanout, rng)
        new = np.setdiff1d(np.unique(nbr), nodes, assume_unique=False)
        src_nodes = np.concatenate([nodes, new])
        sorter = np.argsort(src_nodes)
        src_local = sorter[np.searchsorted(src_nodes, nbr, sorter=sorter)]
        blocks.append((len(nodes), torch.from_numpy(seg), torch.from_numpy(src_local)))
        nodes = src_nodes
    return nodes, blocks[::-1]


class Sage(nn.Module):
    def __init__(self, dims, dropout):
        super().__init__()
        self.self_lin = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.neigh_lin = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = dropout

    def forward(self, x, blocks):
        h = x
        for l, (num_dst, dst, src) in enumerate(blocks):
            deg = torch.bincount(dst, minlength=num_dst).clamp(min=1).unsqueeze(1).to(h.dtype)
            mean = torch.zeros(num_dst, h.shape[1]).index_add_(0, dst, h[src]) / deg
            h = self.self_lin[l](h[:num_dst]) + self.neigh_lin[l](mean)
            if l + 1 < len(blocks):
                h = F.dropout(F.relu(h), self.dropout, self.training)
        return h


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/debian-graph")
    p.add_argument("--fanouts", default="15,10")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g = read_safetensors(f"{a.data}/graph.safetensors")
    indptr, indices = np.asarray(g["indptr"]), np.asarray(g["indices"]).astype(np.int64)
    feats = read_safetensors(f"{a.data}/features.safetensors")["features"]
    nodes = read_safetensors(f"{a.data}/nodes.safetensors")
    labels, split = torch.from_numpy(np.asarray(nodes["labels"]).astype(np.int64)), np.asarray(nodes["split"])
    train, val = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    fanouts = [int(f) for f in a.fanouts.split(",")]
    classes = int(labels.max()) + 1
    model = Sage([feats.shape[1]] + [a.hidden] * (len(fanouts) - 1) + [classes], a.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    times = []
    for epoch in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm, total = rng.permutation(train), 0.0
        for i in range(0, len(perm), a.batch):
            seeds = perm[i:i + a.batch]
            inputs, blocks = sample_blocks(indptr, indices, seeds, fanouts, rng)
            x = torch.from_numpy(np.ascontiguousarray(feats[inputs]))
            loss = F.cross_entropy(model(x, blocks), labels[seeds])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(seeds)
        times.append(time.perf_counter() - t0)
        print(f"epoch {epoch}: {times[-1]:.2f} s, train loss {total / len(perm):.4f}", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(val), a.batch):
            seeds = val[i:i + a.batch]
            inputs, blocks = sample_blocks(indptr, indices, seeds, fanouts, rng)
            x = torch.from_numpy(np.ascontiguousarray(feats[inputs]))
            correct += int((model(x, blocks).argmax(1) == labels[seeds]).sum())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}: median epoch {float(np.median(times)):.2f} s over {len(times)} epochs, "
          f"val accuracy {correct / max(1, len(val)):.4f}, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
