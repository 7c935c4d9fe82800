#!/usr/bin/python3
"""Generate tests/data/gpt_tiny_reference.safetensors.

A tiny GPT-2-layout model (tied LM head, pre-LayerNorm blocks, GELU tanh,
causal softmax attention) with reference values for one training step:
initial parameters, tokens/targets, logits, loss, the gradient of the loss
w.r.t. every parameter, and the parameters after one AdamW step.

Precision: parameters are initialised in float32; the forward pass, backward
pass and the AdamW step are then run in float64 starting from those exact
float32 values, and every result is rounded to float32 only when stored.

The safetensors file is written by hand (no dependency on the `safetensors`
package): 8-byte little-endian header length, a JSON header padded with
spaces to a multiple of 8, then the raw little-endian tensor data.

Usage (Debian's python3-torch; run from anywhere):
    /usr/bin/python3 scripts/make_gpt_reference.py [--out PATH] [--check]

--check additionally re-reads the written file with an independent reader,
compares it to the in-memory tensors, and checks a few gradients against
float64 central finite differences.
"""

import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

CONFIG = dict(
    vocab_size=64,
    n_ctx=16,
    n_layer=2,
    n_head=2,
    n_embd=16,
    batch=2,
    seq_len=8,
    lr=1e-2,
    beta1=0.9,
    beta2=0.95,
    eps=1e-8,
    weight_decay=0.1,
)
LN_EPS = 1e-5
SEED = 0
TOKEN_SEED = 1234

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data", "gpt_tiny_reference.safetensors")


def param_shapes(cfg):
    """Ordered (name, shape) list in PyTorch nn.Linear layout (weight [out, in])."""
    V, C, L = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"]
    shapes = [("wte.weight", [V, C]), ("wpe.weight", [cfg["n_ctx"], C])]
    for i in range(L):
        p = "h.%d." % i
        shapes += [
            (p + "ln_1.weight", [C]),
            (p + "ln_1.bias", [C]),
            (p + "attn.c_attn.weight", [3 * C, C]),
            (p + "attn.c_attn.bias", [3 * C]),
            (p + "attn.c_proj.weight", [C, C]),
            (p + "attn.c_proj.bias", [C]),
            (p + "ln_2.weight", [C]),
            (p + "ln_2.bias", [C]),
            (p + "mlp.c_fc.weight", [4 * C, C]),
            (p + "mlp.c_fc.bias", [4 * C]),
            (p + "mlp.c_proj.weight", [C, 4 * C]),
            (p + "mlp.c_proj.bias", [C]),
        ]
    shapes += [("ln_f.weight", [C]), ("ln_f.bias", [C])]
    return shapes


def init_params(cfg):
    """Deterministic float32 init. Matrices ~ N(0, 0.02); LayerNorm weights
    1 + 0.1*N(0,1); all biases (LayerNorm and Linear) 0.05*N(0,1)."""
    torch.manual_seed(SEED)
    params = {}
    for name, shape in param_shapes(cfg):
        z = torch.randn(*shape, dtype=torch.float32)
        if name.endswith(".bias"):
            t = 0.05 * z
        elif "ln_" in name:  # LayerNorm weight
            t = 1.0 + 0.1 * z
        else:
            t = 0.02 * z
        params[name] = t.to(torch.float32).contiguous()
    return params


def make_tokens(cfg):
    g = torch.Generator().manual_seed(TOKEN_SEED)
    B, T, V = cfg["batch"], cfg["seq_len"], cfg["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=g, dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), generator=g, dtype=torch.int64)
    return tokens, targets


def forward(P, tokens, cfg):
    """Returns logits [B, T, V]. P maps names to tensors (any float dtype)."""
    B, T = tokens.shape
    C, H = cfg["n_embd"], cfg["n_head"]
    D = C // H
    pos = torch.arange(T)
    x = P["wte.weight"][tokens] + P["wpe.weight"][pos][None, :, :]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layer"]):
        p = "h.%d." % i
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], LN_EPS)
        qkv = F.linear(h, P[p + "attn.c_attn.weight"], P[p + "attn.c_attn.bias"])
        q, k, v = qkv.split(C, dim=-1)  # q=[0,C), k=[C,2C), v=[2C,3C)
        # head hh uses columns hh*D .. hh*D+D-1 within each of q, k, v
        q = q.view(B, T, H, D).transpose(1, 2)
        k = k.view(B, T, H, D).transpose(1, 2)
        v = v.view(B, T, H, D).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        att = att.masked_fill(~mask, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, P[p + "attn.c_proj.weight"], P[p + "attn.c_proj.bias"])
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], LN_EPS)
        h = F.linear(h, P[p + "mlp.c_fc.weight"], P[p + "mlp.c_fc.bias"])
        h = F.gelu(h, approximate="tanh")
        x = x + F.linear(h, P[p + "mlp.c_proj.weight"], P[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], LN_EPS)
    return x @ P["wte.weight"].t()  # tied LM head


def loss_fn(logits, targets):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="mean")


def compute_reference(cfg):
    params32 = init_params(cfg)
    tokens, targets = make_tokens(cfg)

    # float64 copies of the exact float32 values
    P = {n: t.to(torch.float64).clone().requires_grad_(True) for n, t in params32.items()}
    logits = forward(P, tokens, cfg)
    loss = loss_fn(logits, targets)
    loss.backward()
    grads = {n: P[n].grad.detach().clone() for n in P}

    # One AdamW step in float64; decay only for dim >= 2 (embeddings + Linear weights).
    decay = [P[n] for n in P if P[n].dim() >= 2]
    no_decay = [P[n] for n in P if P[n].dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg["lr"],
        betas=(cfg["beta1"], cfg["beta2"]),
        eps=cfg["eps"],
    )
    opt.step()
    step1 = {n: P[n].detach().clone() for n in P}

    # Independent check of the optimizer step against the explicit formula.
    b1, b2, lr, eps = cfg["beta1"], cfg["beta2"], cfg["lr"], cfg["eps"]
    for n, p0 in params32.items():
        p = p0.to(torch.float64)
        g = grads[n]
        wd = cfg["weight_decay"] if p.dim() >= 2 else 0.0
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        m_hat = m / (1 - b1)
        v_hat = v / (1 - b2)
        ref = p * (1 - lr * wd) - lr * m_hat / (v_hat.sqrt() + eps)
        err = (ref - step1[n]).abs().max().item()
        assert err < 1e-12, (n, err)

    out = {}
    for n in params32:
        out[n] = params32[n]
    out["tokens"] = tokens.to(torch.int32)
    out["targets"] = targets.to(torch.int32)
    out["logits"] = logits.detach().to(torch.float32)
    out["loss"] = loss.detach().reshape(1).to(torch.float32)
    for n in params32:
        out["grad." + n] = grads[n].to(torch.float32)
    for n in params32:
        out["step1." + n] = step1[n].to(torch.float32)
    return out, dict(params32=params32, tokens=tokens, targets=targets,
                     loss64=loss.item(), grads64=grads)


# ---------------------------------------------------------------- safetensors

_DTYPE = {torch.float32: ("F32", "<f4"), torch.int32: ("I32", "<i4")}


def write_safetensors(path, tensors, metadata):
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        code, _ = _DTYPE[t.dtype]
        data = t.numpy().astype(_DTYPE[t.dtype][1], copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors_independent(path):
    """Minimal reader using only struct/json (no torch, no numpy)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", {})
    out = {}
    end_max = 0
    for name, info in header.items():
        b, e = info["data_offsets"]
        fmt = {"F32": "f", "I32": "i"}[info["dtype"]]
        count = 1
        for s in info["shape"]:
            count *= s
        assert e - b == 4 * count, name
        vals = struct.unpack_from("<%d%s" % (count, fmt), raw, base + b)
        out[name] = (info["dtype"], info["shape"], vals)
        end_max = max(end_max, e)
    assert base + end_max == len(raw), "trailing bytes / size mismatch"
    return out, meta


# ---------------------------------------------------------------- checks

def check_file(path, tensors):
    read, meta = read_safetensors_independent(path)
    assert list(read.keys()) == list(tensors.keys())
    for name, t in tensors.items():
        dtype, shape, vals = read[name]
        assert shape == list(t.shape), name
        assert dtype == _DTYPE[t.dtype][0], name
        flat = t.reshape(-1).tolist()
        assert len(flat) == len(vals)
        for a, b in zip(flat, vals):
            assert a == b or (a != a and b != b), name  # bit-exact after round trip
    cfg = json.loads(meta["config"])
    assert cfg == CONFIG, cfg
    print("file check: %d tensors re-read and bit-identical; metadata ok" % len(read))


def check_finite_differences(info, cfg, n_per_param=3, h=1e-6):
    params64 = {n: t.to(torch.float64) for n, t in info["params32"].items()}
    tokens, targets = info["tokens"], info["targets"]
    grads = info["grads64"]
    g = torch.Generator().manual_seed(7)
    names = ["wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.attn.c_attn.weight",
             "h.1.attn.c_attn.bias", "h.1.mlp.c_fc.weight", "h.0.mlp.c_proj.bias",
             "ln_f.bias"]
    worst = 0.0
    with torch.no_grad():
        for n in names:
            numel = params64[n].numel()
            idxs = torch.randperm(numel, generator=g)[:n_per_param].tolist()
            if n == "wpe.weight":
                idxs = [0, 5, 7 * cfg["n_embd"] + 3]  # positions that are used
            for idx in idxs:
                flat = params64[n].view(-1)
                orig = flat[idx].item()
                flat[idx] = orig + h
                lp = loss_fn(forward(params64, tokens, cfg), targets).item()
                flat[idx] = orig - h
                lm = loss_fn(forward(params64, tokens, cfg), targets).item()
                flat[idx] = orig
                fd = (lp - lm) / (2 * h)
                an = grads[n].view(-1)[idx].item()
                # central-difference round-off is ~ eps64*|loss|/h ~ 1e-9 absolute
                err = abs(fd - an) / (1e-8 + 1e-5 * abs(an))
                worst = max(worst, err)
                print("  fd %-24s [%4d] analytic % .9e  fd % .9e  |diff| %.1e"
                      % (n, idx, an, fd, abs(fd - an)))
    assert worst < 1.0, worst
    print("finite-difference check passed (|fd - analytic| <= 1e-8 + 1e-5*|analytic|)")


def check_float32_run(tensors, info, cfg):
    """How far a plain float32 PyTorch run lands from the stored reference:
    a guide for the tolerances a float32 C++ implementation can expect."""
    P = {n: t.clone().requires_grad_(True) for n, t in info["params32"].items()}
    logits = forward(P, info["tokens"], cfg)
    loss = loss_fn(logits, info["targets"])
    loss.backward()
    grads = {n: P[n].grad.clone() for n in P}
    opt = torch.optim.AdamW(
        [{"params": [P[n] for n in P if P[n].dim() >= 2], "weight_decay": cfg["weight_decay"]},
         {"params": [P[n] for n in P if P[n].dim() < 2], "weight_decay": 0.0}],
        lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])
    opt.step()
    print("float32 torch run vs reference: |loss diff| %.1e, max |logits diff| %.1e"
          % (abs(loss.item() - tensors["loss"].item()),
             (logits.detach() - tensors["logits"]).abs().max().item()))
    gmax = max((grads[n] - tensors["grad." + n]).abs().max().item() for n in P)
    print("  max |grad diff| over all params %.1e" % gmax)
    for n in P:
        d = (P[n].detach() - tensors["step1." + n]).abs().max().item()
        if d > 1e-7:
            print("  step1.%-26s max |diff| %.1e" % (n, d))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    tensors, info = compute_reference(CONFIG)
    metadata = {
        "config": json.dumps(CONFIG, sort_keys=True),
        "generator": "scripts/make_gpt_reference.py, torch %s" % torch.__version__,
        "precision": "params initialised in float32; forward, backward and AdamW step "
                     "computed in float64 from those exact float32 values; all results "
                     "stored rounded to float32",
        "model": "GPT-2 layout, pre-LN, layernorm eps 1e-5, GELU tanh approximation, "
                 "causal softmax attention scale 1/sqrt(head_dim), LM head tied to "
                 "wte (logits = ln_f(x) @ wte.weight^T), no dropout",
        "optimizer": "torch.optim.AdamW, one step: p *= 1 - lr*wd; "
                     "p -= lr * m_hat / (sqrt(v_hat) + eps); weight_decay only for "
                     "params with dim >= 2 (wte, wpe, Linear weights)",
        "loss_float64": repr(info["loss64"]),
    }
    write_safetensors(args.out, tensors, metadata)
    size = os.path.getsize(args.out)
    print("wrote %s (%d bytes), loss = %.9f" % (args.out, size, info["loss64"]))
    if args.check:
        check_file(args.out, tensors)
        check_finite_differences(info, CONFIG)
        check_float32_run(tensors, info, CONFIG)
        gmin = min(t.abs()[t != 0].min().item() for n, t in info["grads64"].items()
                   if (t != 0).any())
        zeros = {n: int((t == 0).sum()) for n, t in info["grads64"].items() if (t == 0).any()}
        print("smallest nonzero |grad| = %.3e; exactly-zero grads: %s" % (gmin, zeros))
        for n, t in info["grads64"].items():
            a = t.abs()
            print("  |grad.%s|: max %.2e median %.2e min %.2e; #(<1e-6) = %d"
                  % (n, a.max(), a.median(), a.min(), int((a < 1e-6).sum())))
        for name, t in tensors.items():
            print("  %-28s %s %s" % (name, _DTYPE[t.dtype][0], list(t.shape)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
