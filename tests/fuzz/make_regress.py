#!/usr/bin/env python3
"""Writes the regression inputs of tests/fuzz/regress/<harness>/ (committed; run.sh only reads them).

Each file reproduces a defect the readers once had (all fixed); every harness must run them clean. The files
use the harnesses' split formats (tests/fuzz/fuzz_util.hpp). Standard library only:

    python3 tests/fuzz/make_regress.py            # rewrites tests/fuzz/regress/
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "regress")
DEEP = "[" * 5000 + "]" * 5000  # 5,000 levels: far past io::json_max_depth (64)


def write(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 64 * 1024, name
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def prefixed(first, second):  # fuzz_util.hpp "prefixed pair"
    return struct.pack("<I", len(first)) + first + second


def archive(files):  # fuzz_util.hpp "archive"
    out = b""
    for name, content in files:
        out += bytes([len(name)]) + name.encode() + struct.pack("<I", len(content)) + content
    return out


def safetensors(header_text, data=b""):
    """A safetensors file with this exact header text (padded with spaces to a multiple of 8)."""
    h = header_text.encode() if isinstance(header_text, str) else header_text
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_f32(tensors, metadata=None):
    """tensors: [(name, shape, values)] stored as F32 in name order."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, shape, values in sorted(tensors):
        b = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    return safetensors(json.dumps(header, separators=(",", ":")), data)


def npy(descr, shape, body, major=1):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    prefix = 10 if major == 1 else 12
    while (prefix + len(header) + 1) % 64:
        header += " "
    header += "\n"
    size = struct.pack("<H", len(header)) if major == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([major, 0]) + size + header.encode() + body


def gz(raw):
    return gzip.compress(raw, compresslevel=6, mtime=0)


# ----------------------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------------------
def safetensors_inputs():
    write("safetensors", "header_nested_5000.safetensors", safetensors('{"a":' + DEEP + "}"))
    write("safetensors", "metadata_nested_5000.safetensors", safetensors('{"__metadata__":' + DEEP + "}"))
    ok = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    write("safetensors", "header_nul_byte.safetensors", safetensors(ok.encode() + b"\0garbage", b"\0\0\x80\x3f"))
    write("safetensors", "header_nul_byte_in_string.safetensors",
          safetensors(b'{"x\0y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0\0\x80\x3f"))
    # [2^63, 2^63, 0] holds no values: a valid, empty tensor (the product is 0, not an overflow).
    write("safetensors", "shape_2p63_2p63_0.safetensors",
          safetensors('{"e":{"dtype":"F32","shape":[9223372036854775808,9223372036854775808,0],"data_offsets":[0,0]}}'))
    write("safetensors", "shape_2p63_2p63_0_with_data.safetensors",
          safetensors('{"e":{"dtype":"F64","shape":[9223372036854775808,9223372036854775808,0],"data_offsets":[0,0]},'
                      '"f":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', b"\x00\x3c\x00\x7e"))


# ----------------------------------------------------------------------------------------------------------
# npy: float data with NaN / infinities, which the harness also loads as int32 (must be refused, not converted)
# ----------------------------------------------------------------------------------------------------------
def npy_inputs():
    nan, inf = float("nan"), float("inf")
    write("npy", "f4_nan_as_int32.npy", npy("<f4", [3], struct.pack("<3f", 1.0, nan, 2.0)))
    write("npy", "f8_inf_as_int32.npy", npy("<f8", [2], struct.pack("<2d", inf, -inf)))
    write("npy", "f8_2p31_as_int32.npy", npy("<f8", [2], struct.pack("<2d", 2147483648.0, -2147483649.0)))
    write("npy", "f2_nan_be_as_int32.npy", npy(">f2", [2], b"\x7e\x00\x7c\x00"))
    write("npy", "f4_nan_v2.npy", npy("<f4", [1, 1], struct.pack("<f", nan), major=2))


# ----------------------------------------------------------------------------------------------------------
# IDX: a header that claims 16384x16384 images (fuzz_idx.cpp: flags byte, then the payload)
# ----------------------------------------------------------------------------------------------------------
def idx_inputs():
    images = struct.pack(">IIII", 0x803, 1, 16384, 16384) + bytes(1000)
    labels = struct.pack(">II", 0x801, 1) + b"\x03"
    write("idx", "images_16384x16384_limits.bin", b"\x01" + gz(images))  # read_idx_images with 28x28 limits
    write("idx", "images_16384x16384_nolimits.bin", b"\x00" + gz(images))  # no limits: the body is short
    write("idx", "images_16384x16384_split.bin", b"\x03" + prefixed(gz(images), gz(labels)))  # load_fashion_mnist
    many = struct.pack(">IIII", 0x803, 0xFFFFFFFF, 16384, 16384) + bytes(64)
    write("idx", "images_4g_16384x16384_nolimits.bin", b"\x00" + gz(many))


# ----------------------------------------------------------------------------------------------------------
# PEFT folders (u32 n | adapter_config.json | adapter_model.safetensors)
# ----------------------------------------------------------------------------------------------------------
def peft_weights():
    return safetensors_f32([("base_model.model.q.lora_A.weight", [1, 2], [0.5, -0.5]),
                            ("base_model.model.q.lora_B.weight", [2, 1], [1.0, 2.0])], {"format": "pt"})


def peft_inputs():
    config = '{"peft_type": "LORA", "r": 1, "lora_alpha": 2, "target_modules": %s}'
    write("peft", "config_nested_5000.bin", prefixed((config % DEEP).encode(), peft_weights()))
    write("peft", "config_top_nested_5000.bin", prefixed(DEEP.encode(), peft_weights()))
    write("peft", "weights_header_nested_5000.bin",
          prefixed((config % '["q"]').encode(), safetensors('{"a":' + DEEP + "}")))
    write("peft", "weights_header_nul_byte.bin",
          prefixed((config % '["q"]').encode(), safetensors(b'{"__metadata__":{"format":"pt"}}\0')))


# ----------------------------------------------------------------------------------------------------------
# LoRA collections (an archive of the folder's files)
# ----------------------------------------------------------------------------------------------------------
def collection(shape_a_query):
    """index.json of a valid collection (rank 1, modules q and v), with q's A shape replaced."""
    tensors = [("q", "A", [1, 3]), ("q", "B", [4, 1]), ("v", "A", [1, 3]), ("v", "B", [2, 1])]
    entries, offset = [], 0
    for module, kind, shape in tensors:
        entries.append({"kind": kind, "module": module, "name": "%s.lora_%s.weight" % (module, kind),
                        "offset": offset, "shape": shape})
        offset += shape[0] * shape[1]
    index = {
        "format": "cpdiff.lora_collection", "version": 1, "dim": offset, "std_floor": 1e-8, "feature_dim": 1,
        "adapter": {"r": 1, "lora_alpha": 2.0, "use_rslora": False, "lora_dropout": 0.0,
                    "target_modules": ["q", "v"]},
        "tensors": entries,
        "conditions": [{"name": "c0", "file": "condition_00000.npy", "checkpoints": 2}],
    }
    entries[0]["shape"] = "@SHAPE@"  # q's A comes first; replaced by the literal text below
    text = json.dumps(index, indent=1).replace('"@SHAPE@"', shape_a_query, 1)
    data = struct.pack("<%df" % (2 * offset), *[0.25 * i for i in range(2 * offset)])
    return [("index.json", text.encode()),
            ("features.npy", npy("<f4", [1, 1], struct.pack("<f", 1.0))),
            ("condition_00000.npy", npy("<f4", [2, offset], data))]


def collection_inputs():
    write("lora_collection", "valid.bin", archive(collection("[1, 3]")))
    write("lora_collection", "shape_minus_one.bin", archive(collection("[1, -1]")))
    write("lora_collection", "shape_fraction.bin", archive(collection("[1.9, 2]")))
    files = collection("[1, 3]")
    files[0] = ("index.json", ('{"format": "cpdiff.lora_collection", "version": 1, "adapter": ' + DEEP + "}").encode())
    write("lora_collection", "index_nested_5000.bin", archive(files))
    files[0] = ("index.json", DEEP.encode())
    write("lora_collection", "index_top_nested_5000.bin", archive(files))


# ----------------------------------------------------------------------------------------------------------
# The other JSON readers and the checkpoint reader: the same deep nesting
# ----------------------------------------------------------------------------------------------------------
def other_inputs():
    write("checkpoint", "header_nested_5000.safetensors", safetensors('{"__metadata__":{"format":' + DEEP + "}}"))
    write("checkpoint", "shape_2p63_2p63_0.safetensors",
          safetensors('{"__metadata__":{"format":"cpdiff.train_checkpoint.v1","trainer":"fuzz_trainer","model":"fuzz model: fc1 3x2, encoder 4x2"},'
                      '"model/fc1.weight":{"dtype":"F32","shape":[9223372036854775808,9223372036854775808,0],'
                      '"data_offsets":[0,0]}}'))
    write("manifest", "line_nested_5000.jsonl",
          '{"adapter": "a", "text": "t"}\n{"adapter": "b", "text": ' + DEEP + "}\n")
    write("manifest", "line_nul_byte.jsonl", b'{"adapter": "a", "text": "t"}\0 ignored?\n')
    write("generator_config", "nested_5000.json", '{"seed": ' + DEEP + "}")
    write("generator_config", "top_nested_5000.json", DEEP)


if __name__ == "__main__":
    safetensors_inputs()
    npy_inputs()
    idx_inputs()
    peft_inputs()
    collection_inputs()
    other_inputs()
    print("make_regress: wrote", OUT)
