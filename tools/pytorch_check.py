#!/usr/bin/env python3
"""Cross-framework check: does PyTorch give the accuracy cpdiff reported for a ViT base + LoRA adapter?

Needs only torch and numpy (no transformers, no safetensors package). Usage:

  # the base model alone, on the first 2000 t10k images, identity labels
  python3 tools/pytorch_check.py --base BASE --no-adapter --test-images 2000 [--expect 81.85]

  # base + adapter merged, on an explicit task (label map and/or image style)
  python3 tools/pytorch_check.py --base BASE --adapter ADAPTER --test-images 2000 \
      --label-map 1,0,2,3,4,5,6,7,8,9 [--style 'rotate(30)'] [--expect PCT]

  # base + adapter, task and expected accuracy taken from cpdiff's evaluation.json
  python3 tools/pytorch_check.py --base BASE --adapter adapters/EXP/ADAPTER \
      --evaluation adapters/EXP/evaluation.json

BASE is a Hugging Face ViTForImageClassification folder (config.json, model.safetensors); ADAPTER is a
PEFT LoRA folder (adapter_config.json, adapter_model.safetensors). The adapter is merged into the weights:
W += scaling * B @ A, scaling = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora).
The test set is built as cpdiff's data::make_split builds it: the first N t10k images, the label map applied
(classes mapped to -1 dropped), then the image style applied to the kept images. A style is written as
data::style::name() writes it: identity, invert, hflip, edges, rotate(DEG), blur(SIGMA), contrast(F),
noise(STD,seed=S), interpolate(A,B,L) (A and B styles themselves); the pixel math re-implements
include/cpdiff/data/image_styles.hpp (noise uses the same Philox4x32-10 normals as core/rng.hpp).
Prints the accuracy in percent; with an expected accuracy, exits 1 when they differ by more than 0.1 point.
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
TOLERANCE = 0.1  # percentage points
BATCH = 500
PEFT_PREFIX = "base_model.model."


class CheckError(Exception):
    """A problem with the inputs, reported as one line."""


# ---------------------------------------------------------------- files


def read_json(path):
    if not os.path.isfile(path):
        raise CheckError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckError(f"{path}: not valid JSON ({e})")


def decode_tensor(raw, dtype, shape, path, name):
    """Raw little-endian bytes -> float32 torch tensor."""
    if dtype == "F32":
        values = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":  # the top 16 bits of a float32
        values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        raise CheckError(f"{path}: tensor '{name}' has dtype {dtype}; only F32, F16 and BF16 are supported")
    return torch.from_numpy(values.astype(np.float32).reshape(shape))


def read_safetensors(path):
    """name -> float32 tensor, for every tensor of a .safetensors file."""
    if not os.path.isfile(path):
        raise CheckError(f"{path}: no such file")
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise CheckError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise CheckError(f"{path}: header length {header_len} runs past the end of the file")
    try:
        header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckError(f"{path}: header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise CheckError(f"{path}: header is not a JSON object")
    data = memoryview(blob)[8 + header_len:]
    sizes = {"F32": 4, "F16": 2, "BF16": 2}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], list(entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckError(f"{path}: tensor '{name}' lacks dtype, shape or data_offsets in the header")
        expected = math.prod(shape) * sizes.get(dtype, 0)
        if not 0 <= begin <= end or (dtype in sizes and end - begin != expected):
            raise CheckError(f"{path}: tensor '{name}' {dtype} {shape} has bad data_offsets [{begin}, {end}]")
        if end > len(data):
            raise CheckError(f"{path}: tensor '{name}' ends at byte {end} of {len(data)} data bytes (truncated file?)")
        tensors[name] = decode_tensor(data[begin:end], dtype, shape, path, name)
    return tensors


def read_idx(path):
    """A gzip'd IDX file (Fashion-MNIST) -> numpy uint8 array."""
    if not os.path.isfile(path):
        raise CheckError(f"{path}: no such file")
    with gzip.open(path, "rb") as f:
        blob = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", blob[:4])
    if zero != 0 or dtype_code != 0x08:
        raise CheckError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", blob[4:4 + 4 * ndim])
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


# ---------------------------------------------------------------- data


def load_test_set(count, label_map, style):
    """cpdiff's data::make_split of the first `count` t10k images: labels mapped, dropped classes removed, then
    `style` applied to the kept images. Returns images [n, 1, 28, 28] (float32) and labels [n]."""
    images = read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))[:count]
    labels = read_idx(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz"))[:count]
    if len(labels) < count:
        raise CheckError(f"--test-images {count}: the t10k split holds only {len(labels)} images")
    mapped = np.asarray(label_map, dtype=np.int64)[labels]
    keep = mapped >= 0
    # pixel * (1.0f / 255.0f) in float, as load_fashion_mnist scales
    kept = images[keep].astype(np.float32) * (np.float32(1.0) / np.float32(255.0))
    x = torch.from_numpy(apply_style(style, kept)).unsqueeze(1)
    return x, torch.from_numpy(mapped[keep])


def parse_label_map(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise CheckError(f"--label-map '{text}': not comma-separated integers")
    check_label_map(values, f"--label-map '{text}'")
    return values


def check_label_map(values, where):
    if len(values) != 10 or any(not isinstance(v, int) or not -1 <= v < 10 for v in values):
        raise CheckError(f"{where}: a label map needs 10 integers in [-1, 10)")


# ---------------------------------------------------------------- image styles
# A re-implementation of include/cpdiff/data/image_styles.hpp. Images are numpy float32 [n, rows, cols];
# each step is computed in float64 where the C++ computes in double, in the same order, and rounded to
# float32 where the C++ stores a float. Scalar transcendentals (cos, sin, exp, log) go through Python's
# math module, i.e. the same C library the C++ calls.


class Style:
    """One data::style: kind, parameter (angle, sigma, stddev, factor or l), noise seed, interpolated parts."""

    def __init__(self, kind, param=0.0, seed=0, parts=()):
        self.kind, self.param, self.seed, self.parts = kind, param, seed, tuple(parts)


class StyleSyntaxError(Exception):
    pass


NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
INTEGER = re.compile(r"\s*(\d+)")
WORD = re.compile(r"\s*([a-z]+)")
PLAIN_STYLES = ("identity", "invert", "hflip", "edges")
ONE_NUMBER_STYLES = ("rotate", "blur", "contrast")


def parse_style(text):
    """A data::style::name() string -> Style; StyleSyntaxError with the reason otherwise."""

    def expect(token, i):
        j = i
        while j < len(text) and text[j].isspace():
            j += 1
        if not text.startswith(token, j):
            found = f"'{text[j:j + 10]}'" if j < len(text) else "the end"
            raise StyleSyntaxError(f"expected '{token}' at character {j}, found {found}")
        return j + len(token)

    def match(pattern, what, i):
        m = pattern.match(text, i)
        if m is None:
            raise StyleSyntaxError(f"expected {what} at character {i}")
        return m.group(1), m.end()

    def number(i):
        value, i = match(NUMBER, "a number", i)
        return float(value), i

    def style_at(i):
        kind, i = match(WORD, "a style name", i)
        if kind in PLAIN_STYLES:
            return Style(kind), i
        if kind not in ONE_NUMBER_STYLES + ("noise", "interpolate"):
            raise StyleSyntaxError(f"unknown style '{kind}' (known: {', '.join(PLAIN_STYLES + ONE_NUMBER_STYLES)}, "
                                   "noise, interpolate)")
        i = expect("(", i)
        if kind == "interpolate":
            a, i = style_at(i)
            b, i = style_at(expect(",", i))
            l, i = number(expect(",", i))
            if not 0 <= l <= 1:
                raise StyleSyntaxError(f"interpolate: l must be in [0, 1], got {l:g}")
            return Style(kind, l, parts=(a, b)), expect(")", i)
        value, i = number(i)
        if not math.isfinite(value):
            raise StyleSyntaxError(f"{kind}: the parameter must be finite")
        if kind == "blur" and not 0 < value <= 100:
            raise StyleSyntaxError(f"blur: sigma must be in (0, 100], got {value:g}")
        if kind in ("contrast", "noise") and value < 0:
            raise StyleSyntaxError(f"{kind}: the parameter must be >= 0, got {value:g}")
        if kind == "noise":
            seed, i = match(INTEGER, "an integer seed", expect("=", expect("seed", expect(",", i))))
            if int(seed) >= 2 ** 64:
                raise StyleSyntaxError(f"noise: seed {seed} does not fit 64 bits")
            return Style(kind, value, seed=int(seed)), expect(")", i)
        return Style(kind, value), expect(")", i)

    s, i = style_at(0)
    if text[i:].strip():
        raise StyleSyntaxError(f"unexpected '{text[i:]}' after the style")
    return s


def check_style(text, where):
    """parse_style with the error reported as a CheckError naming `where` and the style."""
    if not isinstance(text, str):
        raise CheckError(f"{where}: style {text!r} is not a string")
    try:
        return parse_style(text)
    except StyleSyntaxError as e:
        raise CheckError(f"{where}: style '{text}' cannot be read as a data::style this script re-implements ({e})")


MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32(key, counter_lo, counter_hi):
    """core/rng.hpp's philox4x32 over arrays of counters (uint64): the four uint32 words, as uint64 arrays."""
    counter_lo, counter_hi = np.asarray(counter_lo, np.uint64), np.asarray(counter_hi, np.uint64)
    c0, c1 = counter_lo & MASK32, counter_lo >> np.uint64(32)
    c2, c3 = counter_hi & MASK32, counter_hi >> np.uint64(32)
    k0, k1 = key & 0xFFFFFFFF, key >> 32
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2  # 32 x 32 -> 64 bit products, exact in uint64
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & MASK32, \
            (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & MASK32
        k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


def u32_to_unit(u):
    """core/rng.hpp's u32_to_unit, in float32 arithmetic as there."""
    return ((u >> np.uint64(8)).astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / 16777216.0)


def philox_normals(seed, streams, count):
    """philox_normal(seed, stream, i) for every stream of `streams` and i < count: float32 [len(streams), count]."""
    pairs = (count + 1) // 2
    stream = np.asarray(streams, np.uint64)[:, None] ^ np.uint64(0x8000000000000000)
    b = philox4x32(seed, np.arange(pairs, dtype=np.uint64)[None, :], stream)
    u1, u2 = u32_to_unit(b[0]).astype(np.float64), u32_to_unit(b[1]).astype(np.float64)
    r = np.sqrt(-2.0 * np.array([math.log(v) for v in u1.ravel().tolist()]).reshape(u1.shape))
    th = (2.0 * math.pi) * u2
    cos = np.array([math.cos(v) for v in th.ravel().tolist()]).reshape(th.shape)
    sin = np.array([math.sin(v) for v in th.ravel().tolist()]).reshape(th.shape)
    out = np.empty((len(streams), 2 * pairs), np.float32)
    out[:, 0::2], out[:, 1::2] = (r * cos).astype(np.float32), (r * sin).astype(np.float32)
    return out[:, :count]


def rotate_images(x, degrees):
    n, rows, cols = x.shape
    quarter = degrees / 90.0
    k = int(math.copysign(math.floor(abs(quarter) + 0.5), quarter))  # llround
    k4 = k % 4
    if abs(quarter - k) < 1e-12 and (rows == cols or k4 % 2 == 0):  # exact index permutations
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        sr, sc = {0: (r, c), 1: (c, cols - 1 - r), 2: (rows - 1 - r, cols - 1 - c), 3: (rows - 1 - c, r)}[k4]
        return x[:, sr, sc]
    th = degrees * math.pi / 180.0
    cs, sn = math.cos(th), math.sin(th)
    cx, cy = (cols - 1.0) / 2, (rows - 1.0) / 2
    r, c = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
    u, v = c - cx, cy - r
    su, sv = u * cs + v * sn, -u * sn + v * cs
    sc, sr = cx + su, cy - sv
    r0, c0 = np.floor(sr), np.floor(sc)
    fr, fc = sr - r0, sc - c0
    ir, ic = r0.astype(np.int64), c0.astype(np.int64)
    x64 = x.astype(np.float64)

    def at(i, j):  # x[i][j], 0 outside
        inside = (i >= 0) & (j >= 0) & (i < rows) & (j < cols)
        return np.where(inside, x64[:, np.clip(i, 0, rows - 1), np.clip(j, 0, cols - 1)], 0.0)

    val = (1 - fr) * ((1 - fc) * at(ir, ic) + fc * at(ir, ic + 1)) + \
        fr * ((1 - fc) * at(ir + 1, ic) + fc * at(ir + 1, ic + 1))
    return val.astype(np.float32)


def blur_images(x, sigma):
    n, rows, cols = x.shape
    rad = math.ceil(3 * sigma)
    w, total = [], 0.0
    for k in range(-rad, rad + 1):
        w.append(math.exp(-float(k * k) / (2 * sigma * sigma)))
        total += w[-1]
    w = [e / total for e in w]
    # each output pixel sums its in-range taps in the order k = -rad .. rad, as the C++ loop does
    x64, h = x.astype(np.float64), np.zeros(x.shape, np.float64)
    for k in range(-rad, rad + 1):
        lo, hi = max(0, -k), min(cols, cols - k)
        if lo < hi:
            h[:, :, lo:hi] += w[k + rad] * x64[:, :, lo + k:hi + k]
    y = np.zeros(x.shape, np.float64)
    for k in range(-rad, rad + 1):
        lo, hi = max(0, -k), min(rows, rows - k)
        if lo < hi:
            y[:, lo:hi, :] += w[k + rad] * h[:, lo + k:hi + k, :]
    return y.astype(np.float32)


def edges_images(x):
    n, rows, cols = x.shape
    p = np.zeros((n, rows + 2, cols + 2), np.float64)
    p[:, 1:-1, 1:-1] = x

    def at(dr, dc):  # x[r + dr][c + dc] for every (r, c), 0 outside
        return p[:, 1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]

    gx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    gy = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    m = np.sqrt(gx * gx + gy * gy)
    top = m.max(axis=(1, 2), keepdims=True)
    return np.where(top > 0, m / np.where(top > 0, top, 1.0), 0.0).astype(np.float32)


def contrast_images(x, factor):
    n, rows, cols = x.shape
    flat = x.reshape(n, rows * cols).astype(np.float64)
    mean = np.zeros(n, np.float64)
    for i in range(rows * cols):  # the C++ sums pixel by pixel; numpy's sum would pair them
        mean += flat[:, i]
    mean /= float(rows * cols)
    y = np.clip(factor * flat + (1 - factor) * mean[:, None], 0.0, 1.0)
    return y.astype(np.float32).reshape(x.shape)


def apply_style(style, x):
    """data::style::apply: x float32 [n, rows, cols] in [0, 1] -> styled float32, same shape. Image i of the
    batch is noise's stream i, as in the C++ (make_split passes the kept images as one batch)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    kind, param = style.kind, style.param
    if kind == "identity":
        return x.copy()
    if kind == "invert":
        return np.float32(1.0) - x
    if kind == "hflip":
        return np.ascontiguousarray(x[:, :, ::-1])
    if kind == "rotate":
        return rotate_images(x, param)
    if kind == "blur":
        return blur_images(x, param)
    if kind == "edges":
        return edges_images(x)
    if kind == "contrast":
        return contrast_images(x, param)
    if kind == "noise":
        n, rows, cols = x.shape
        normals = philox_normals(style.seed, np.arange(n, dtype=np.uint64), rows * cols).astype(np.float64)
        v = x.reshape(n, rows * cols).astype(np.float64) + param * normals
        return np.clip(v, 0.0, 1.0).astype(np.float32).reshape(x.shape)
    if kind == "interpolate":
        a, b = apply_style(style.parts[0], x), apply_style(style.parts[1], x)
        return ((1 - param) * a.astype(np.float64) + param * b.astype(np.float64)).astype(np.float32)
    raise CheckError(f"style kind '{kind}' is not implemented")


# ---------------------------------------------------------------- model


def linear_modules(state):
    """Names of the model's Linear modules (every 2-D '<module>.weight')."""
    return {k[: -len(".weight")]: v.shape for k, v in state.items() if k.endswith(".weight") and v.dim() == 2}


def vit_forward(cfg, w, x):
    """Hugging Face ViTForImageClassification forward (eval mode): x [N, C, H, W] -> logits [N, classes]."""
    d, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    p = cfg["patch_size"]
    e = "vit.embeddings."
    h = F.conv2d(x, w[e + "patch_embeddings.projection.weight"], w[e + "patch_embeddings.projection.bias"], stride=p)
    h = h.flatten(2).transpose(1, 2)  # [N, P, D], patches in row-major order
    h = torch.cat([w[e + "cls_token"].expand(h.shape[0], -1, -1), h], dim=1) + w[e + "position_embeddings"]

    def lin(name, t):
        return F.linear(t, w[name + ".weight"], w[name + ".bias"])

    def norm(name, t):
        return F.layer_norm(t, (d,), w[name + ".weight"], w[name + ".bias"], eps)

    for i in range(cfg["num_hidden_layers"]):
        l = f"vit.encoder.layer.{i}."
        h = h + lin(l + "attention.output.dense", attention(norm(l + "layernorm_before", h), l, heads, lin))
        h = h + lin(l + "output.dense", F.gelu(lin(l + "intermediate.dense", norm(l + "layernorm_after", h))))
    return lin("classifier", norm("vit.layernorm", h)[:, 0])


def attention(t, prefix, heads, lin):
    n, tokens, d = t.shape

    def split(name):  # [N, T, D] -> [N, heads, T, D / heads]; head k holds dims [k D/H, (k+1) D/H)
        return lin(prefix + "attention.attention." + name, t).view(n, tokens, heads, d // heads).transpose(1, 2)

    q, k, v = split("query"), split("key"), split("value")
    scores = q @ k.transpose(-2, -1) / math.sqrt(d // heads)
    return (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, tokens, d)


CONFIG_KEYS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "layer_norm_eps",
               "image_size", "patch_size", "num_channels", "num_labels"]


def vit_shapes(cfg):
    """name -> shape of every tensor a ViTForImageClassification with this config holds."""
    d, m, c, p = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_channels"], cfg["patch_size"]
    patches = (cfg["image_size"] // p) ** 2
    e = "vit.embeddings."
    shapes = {e + "cls_token": [1, 1, d], e + "position_embeddings": [1, patches + 1, d],
              e + "patch_embeddings.projection.weight": [d, c, p, p], e + "patch_embeddings.projection.bias": [d],
              "vit.layernorm.weight": [d], "vit.layernorm.bias": [d],
              "classifier.weight": [cfg["num_labels"], d], "classifier.bias": [cfg["num_labels"]]}
    for i in range(cfg["num_hidden_layers"]):
        l = f"vit.encoder.layer.{i}."
        linears = {"attention.attention.query": [d, d], "attention.attention.key": [d, d],
                   "attention.attention.value": [d, d], "attention.output.dense": [d, d],
                   "intermediate.dense": [m, d], "output.dense": [d, m]}
        for name, (out_f, in_f) in linears.items():
            shapes[l + name + ".weight"], shapes[l + name + ".bias"] = [out_f, in_f], [out_f]
        for name in ["layernorm_before", "layernorm_after"]:
            shapes[l + name + ".weight"], shapes[l + name + ".bias"] = [d], [d]
    return shapes


def load_base(folder):
    path = os.path.join(folder, "config.json")
    cfg = read_json(path)
    missing = [k for k in CONFIG_KEYS if not isinstance(cfg.get(k), (int, float))]
    if missing:
        raise CheckError(f"{path}: no number '{missing[0]}' (not a ViTConfig)")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise CheckError(f"{path}: hidden_act '{cfg['hidden_act']}' is not supported (only 'gelu')")
    if cfg["hidden_size"] % cfg["num_attention_heads"] != 0:
        raise CheckError(f"{path}: hidden_size is not a multiple of num_attention_heads")
    path = os.path.join(folder, "model.safetensors")
    state = read_safetensors(path)
    for name, shape in vit_shapes(cfg).items():
        if name not in state:
            raise CheckError(f"{path}: no tensor '{name}' (not a ViTForImageClassification for its config.json)")
        if list(state[name].shape) != shape:
            raise CheckError(f"{path}: tensor '{name}' is {list(state[name].shape)}, config.json implies {shape}")
    return cfg, state


# ---------------------------------------------------------------- adapter


def target_matches(module, targets):
    if isinstance(targets, str):  # PEFT: one regular expression over the full module name
        return re.fullmatch(targets, module) is not None
    return any(module == t or module.endswith("." + t) for t in targets)


def merge_adapter(state, folder):
    """Merges a PEFT LoRA adapter into `state` in place; returns (module count, scaling)."""
    cfg_path = os.path.join(folder, "adapter_config.json")
    cfg = read_json(cfg_path)
    if cfg.get("peft_type") != "LORA":
        raise CheckError(f"{cfg_path}: peft_type is {cfg.get('peft_type')!r}, only 'LORA' is supported")
    r, alpha = cfg.get("r"), cfg.get("lora_alpha")
    if not isinstance(r, int) or r <= 0 or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise CheckError(f"{cfg_path}: needs a positive integer 'r' and a positive 'lora_alpha'")
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora", False) else alpha / r
    path = os.path.join(folder, "adapter_model.safetensors")
    tensors = read_safetensors(path)
    modules = linear_modules(state)
    pairs = {}
    for key in tensors:
        m = re.fullmatch(re.escape(PEFT_PREFIX) + r"(.+)\.lora_([AB])\.weight", key)
        if m is None:
            raise CheckError(f"{path}: tensor '{key}' is not a PEFT '{PEFT_PREFIX}<module>.lora_A/B.weight'")
        pairs.setdefault(m.group(1), {})[m.group(2)] = tensors[key]
    if not pairs:
        raise CheckError(f"{path}: holds no LoRA weights")
    for module, ab in sorted(pairs.items()):
        if module not in modules:
            raise CheckError(f"{path}: module '{module}' is not a Linear of the base model")
        if set(ab) != {"A", "B"}:
            raise CheckError(f"{path}: module '{module}' has lora_{''.join(ab)} but no lora_{'AB'.strip(''.join(ab))}")
        if "target_modules" in cfg and not target_matches(module, cfg["target_modules"]):
            raise CheckError(f"{cfg_path}: target_modules does not name module '{module}'")
        out_f, in_f = modules[module]
        a, b = ab["A"], ab["B"]
        if a.dim() != 2 or b.dim() != 2 or tuple(a.shape) != (r, in_f) or tuple(b.shape) != (out_f, r):
            raise CheckError(f"{path}: module '{module}': lora_A {list(a.shape)} and lora_B {list(b.shape)} do not "
                             f"fit a Linear [{out_f}, {in_f}] with r = {r} (expected [{r}, {in_f}] and [{out_f}, {r}])")
        state[module + ".weight"] = state[module + ".weight"] + scaling * (b @ a)
    return len(pairs), scaling


# ---------------------------------------------------------------- evaluation


def accuracy(cfg, state, x, labels):
    if len(labels) == 0:
        raise CheckError("no test images left after the label map")
    correct = 0
    with torch.no_grad():
        for b in range(0, len(labels), BATCH):
            logits = vit_forward(cfg, state, x[b:b + BATCH])
            correct += int((logits.argmax(dim=1) == labels[b:b + BATCH]).sum())
    return 100.0 * correct / len(labels)


def evaluation_entry(path, adapter_folder):
    """The entry of cpdiff's evaluation.json for this adapter folder: (label_map, style, test_images, accuracy)."""
    name = os.path.basename(os.path.normpath(adapter_folder))
    entries = read_json(path)
    if not isinstance(entries, list):
        raise CheckError(f"{path}: not a JSON list of adapter entries")
    found = [e for e in entries if isinstance(e, dict) and e.get("adapter") == name]
    if not found:
        raise CheckError(f"{path}: no entry with \"adapter\": \"{name}\"")
    e = found[0]
    if not isinstance(e.get("label_map"), list) or not isinstance(e.get("test_images"), int) \
            or not isinstance(e.get("accuracy"), (int, float)) or not isinstance(e.get("style"), str):
        raise CheckError(f"{path}: adapter '{name}' needs a label_map list, a style string, an integer test_images "
                         "and an accuracy")
    check_label_map(e["label_map"], f"{path}: adapter '{name}'")
    style = check_style(e["style"], f"{path}: adapter '{name}'")
    return e["label_map"], style, e["style"], e["test_images"], float(e["accuracy"])


def join_label_map(argv):
    """'--label-map -1,...' -> '--label-map=-1,...' (argparse would take '-1,...' for an option)."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "--label-map" and out[i + 1].startswith("-"):
            out[i:i + 2] = [out[i] + "=" + out[i + 1]]
            break
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="Hugging Face ViT folder (config.json, model.safetensors)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--adapter", help="PEFT LoRA folder (adapter_config.json, adapter_model.safetensors)")
    g.add_argument("--no-adapter", action="store_true", help="evaluate the base model alone")
    p.add_argument("--evaluation", help="cpdiff's evaluation.json (needs --adapter); its entry for the adapter "
                   "sets the test images, label map, style and expected accuracy")
    p.add_argument("--test-images", type=int, default=2000, help="first N t10k images (default 2000)")
    p.add_argument("--label-map", default="0,1,2,3,4,5,6,7,8,9", help="10 labels, -1 drops a class")
    p.add_argument("--style", default="identity", help="image style as data::style::name() writes it, e.g. "
                   "'rotate(30)', 'noise(0.3,seed=5)', 'interpolate(rotate(90),hflip,0.25)' (default identity)")
    p.add_argument("--expect", type=float, help="expected accuracy in percent")
    args = p.parse_args(join_label_map(argv))
    if args.evaluation and not args.adapter:
        p.error("--evaluation needs --adapter")
    if args.test_images <= 0:
        p.error("--test-images must be positive")
    return args


def main(argv):
    args = parse_args(argv)
    torch.use_deterministic_algorithms(True)
    label_map, count, expected = parse_label_map(args.label_map), args.test_images, args.expect
    style_name = args.style
    style = check_style(style_name, "--style")
    if args.evaluation:
        label_map, style, style_name, count, expected = evaluation_entry(args.evaluation, args.adapter)
    cfg, state = load_base(args.base)
    if args.adapter:
        n, scaling = merge_adapter(state, args.adapter)
        print(f"merged {n} LoRA modules from {args.adapter} (scaling {scaling:g})")
    x, labels = load_test_set(count, label_map, style)
    acc = accuracy(cfg, state, x, labels)
    print(f"accuracy: {acc:.2f}% on {len(labels)} images (first {count} t10k, label map {label_map}, "
          f"style {style_name})")
    if expected is None:
        return 0
    diff = round(acc - expected, 9) + 0.0  # 80.6 - 80.60000000000001 prints +0.00, not -0.00
    verdict = "OK" if abs(diff) <= TOLERANCE else f"MISMATCH (more than {TOLERANCE} point)"
    print(f"expected: {expected:.2f}%  difference: {diff:+.2f}  {verdict}")
    return 0 if abs(diff) <= TOLERANCE else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CheckError as e:
        print(f"pytorch_check: error: {e}", file=sys.stderr)
        sys.exit(1)
