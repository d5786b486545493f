#!/usr/bin/env python3
"""Large inputs for the two readers that were quadratic (fixed; found/README.md): time them at N and 2N.

    python3 tests/fuzz/found/make_quadratic.py [N] [--control]   # N modules / conditions (default 4000)

writes, in the harnesses' split formats (tests/fuzz/fuzz_util.hpp):

  found/peft/quadratic_target_modules_<N>.bin          a valid PEFT folder: N modules m0..m{N-1} (A, B [1, 1] F32)
                                                       and target_modules listing them in reverse order;
                                                       lora::detail::check_target_modules is O(modules x targets)
  found/peft/control_no_target_modules_<N>.bin         with --control: the same weights without target_modules
                                                       (linear; for comparing times)
  found/lora_collection/quadratic_conditions_<2N>.bin  a valid collection whose index lists 2N conditions (all
                                                       reading one [0, 2] file); lora_collection::add_condition
                                                       compares each new name with every earlier one

Replay: build-fuzz/fuzz_peft FILE (or fuzz_lora_collection FILE); time it at N and 2N: the time grows 4x.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors_f32(tensors):
    header, data = {}, b""
    for name, shape, values in tensors:
        b = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def npy_f4(shape, body):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(str(d) for d in shape)
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def write(sub, name, data):
    os.makedirs(os.path.join(HERE, sub), exist_ok=True)
    with open(os.path.join(HERE, sub, name), "wb") as f:
        f.write(data)


def peft(n, with_targets):
    tensors = []
    for i in range(n):
        tensors.append(("base_model.model.m%d.lora_A.weight" % i, [1, 1], [0.5]))
        tensors.append(("base_model.model.m%d.lora_B.weight" % i, [1, 1], [0.25]))
    config = {"peft_type": "LORA", "r": 1, "lora_alpha": 2}
    if with_targets:
        config["target_modules"] = ["m%d" % i for i in reversed(range(n))]
    c = json.dumps(config).encode()
    return struct.pack("<I", len(c)) + c + safetensors_f32(tensors)


def collection(c):
    index = {
        "format": "cpdiff.lora_collection", "version": 1, "dim": 2, "std_floor": 1e-8, "feature_dim": 0,
        "adapter": {"r": 1, "lora_alpha": 2.0, "use_rslora": False, "lora_dropout": 0.0, "target_modules": ["q"]},
        "tensors": [{"kind": "A", "module": "q", "name": "q.lora_A.weight", "offset": 0, "shape": [1, 1]},
                    {"kind": "B", "module": "q", "name": "q.lora_B.weight", "offset": 1, "shape": [1, 1]}],
        "conditions": [{"name": "c%d" % i, "file": "e.npy", "checkpoints": 0} for i in range(c)],
    }
    out = b""
    for name, content in [("index.json", json.dumps(index, separators=(",", ":")).encode()),
                          ("e.npy", npy_f4([0, 2], b""))]:
        out += bytes([len(name)]) + name.encode() + struct.pack("<I", len(content)) + content
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--control"]
    n = int(args[0]) if args else 4000
    write("peft", "quadratic_target_modules_%d.bin" % n, peft(n, True))
    if "--control" in sys.argv:
        write("peft", "control_no_target_modules_%d.bin" % n, peft(n, False))
    write("lora_collection", "quadratic_conditions_%d.bin" % (2 * n), collection(2 * n))
    print("make_quadratic: wrote the reproducers under", HERE)
