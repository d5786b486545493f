#!/usr/bin/env python3
"""Cross-framework check: does PyTorch give the accuracy cpdiff reported for a ViT base + LoRA adapter?

Needs only torch and numpy (no transformers, no safetensors package). Usage:

  # the base model alone, on the first 2000 t10k images, identity labels
  python3 tools/pytorch_check.py --base BASE --no-adapter --test-images 2000 [--expect 81.85]

  # base + adapter merged, on an explicit task
  python3 tools/pytorch_check.py --base BASE --adapter ADAPTER --test-images 2000 \
      --label-map 1,0,2,3,4,5,6,7,8,9 [--expect PCT]

  # base + adapter, task and expected accuracy taken from cpdiff's evaluation.json
  python3 tools/pytorch_check.py --base BASE --adapter adapters/EXP/ADAPTER \
      --evaluation adapters/EXP/evaluation.json

BASE is a Hugging Face ViTForImageClassification folder (config.json, model.safetensors); ADAPTER is a
PEFT LoRA folder (adapter_config.json, adapter_model.safetensors). The adapter is merged into the weights:
W += scaling * B @ A, scaling = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora).
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


def load_test_set(count, label_map):
    """The first `count` t10k images as [n, 1, 28, 28] floats in [0, 1], labels mapped, dropped classes removed."""
    images = read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))[:count]
    labels = read_idx(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz"))[:count]
    if len(labels) < count:
        raise CheckError(f"--test-images {count}: the t10k split holds only {len(labels)} images")
    mapped = np.asarray(label_map, dtype=np.int64)[labels]
    keep = mapped >= 0
    x = torch.from_numpy(images[keep].astype(np.float32) / 255.0).unsqueeze(1)
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
    """The entry of cpdiff's evaluation.json for this adapter folder: (label_map, test_images, accuracy)."""
    name = os.path.basename(os.path.normpath(adapter_folder))
    entries = read_json(path)
    if not isinstance(entries, list):
        raise CheckError(f"{path}: not a JSON list of adapter entries")
    found = [e for e in entries if isinstance(e, dict) and e.get("adapter") == name]
    if not found:
        raise CheckError(f"{path}: no entry with \"adapter\": \"{name}\"")
    e = found[0]
    if e.get("style") != "identity":
        raise CheckError(f"{path}: adapter '{name}' has style '{e.get('style')}'; this script re-implements "
                         "label-map tasks only (style 'identity')")
    if not isinstance(e.get("label_map"), list) or not isinstance(e.get("test_images"), int) \
            or not isinstance(e.get("accuracy"), (int, float)):
        raise CheckError(f"{path}: adapter '{name}' needs a label_map list, an integer test_images and an accuracy")
    check_label_map(e["label_map"], f"{path}: adapter '{name}'")
    return e["label_map"], e["test_images"], float(e["accuracy"])


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
                   "sets the test images, label map and expected accuracy")
    p.add_argument("--test-images", type=int, default=2000, help="first N t10k images (default 2000)")
    p.add_argument("--label-map", default="0,1,2,3,4,5,6,7,8,9", help="10 labels, -1 drops a class")
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
    if args.evaluation:
        label_map, count, expected = evaluation_entry(args.evaluation, args.adapter)
    cfg, state = load_base(args.base)
    if args.adapter:
        n, scaling = merge_adapter(state, args.adapter)
        print(f"merged {n} LoRA modules from {args.adapter} (scaling {scaling:g})")
    x, labels = load_test_set(count, label_map)
    acc = accuracy(cfg, state, x, labels)
    print(f"accuracy: {acc:.2f}% on {len(labels)} images (first {count} t10k, label map {label_map})")
    if expected is None:
        return 0
    diff = acc - expected
    verdict = "OK" if abs(diff) <= TOLERANCE else f"MISMATCH (more than {TOLERANCE} point)"
    print(f"expected: {expected:.2f}%  difference: {diff:+.2f}  {verdict}")
    return 0 if abs(diff) <= TOLERANCE else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CheckError as e:
        print(f"pytorch_check: error: {e}", file=sys.stderr)
        sys.exit(1)
