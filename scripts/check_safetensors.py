#!/usr/bin/python3
"""Checks that a safetensors file written by ssl (ssl::save_safetensors / save_checkpoint)
reads back in Python, and optionally compares its tensors with reference values.

    scripts/check_safetensors.py FILE [--reference REF] [--tol 1e-6]

The file is parsed by hand (struct + json, following the format spec) and, when the
`safetensors` package is installed, also with safetensors.torch.load_file; both must agree.
REF may be a torch.save'd dict of tensors (.pt) or another safetensors file; every tensor
in REF must be in FILE with the same shape and values within --tol (max abs difference).
Exit status 0 when everything matches. Not part of the C++ test suite.
"""
import argparse
import json
import struct
import sys

import torch


def parse_by_hand(path):
    """Returns (tensors: dict name -> torch.float32 tensor, metadata: dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: truncated ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {e['dtype']}")
        b, en = e["data_offsets"]
        if b != end:
            raise ValueError(f"{path}: {name} starts at {b}, expected {end}")
        count = 1
        for d in e["shape"]:
            count *= d
        if en - b != 4 * count:
            raise ValueError(f"{path}: {name} spans {en - b} bytes for shape {e['shape']}")
        values = struct.unpack(f"<{count}f", data[b:en])
        tensors[name] = torch.tensor(values, dtype=torch.float32).reshape(e["shape"])
        end = en
    if end != len(data):
        raise ValueError(f"{path}: tensors cover {end} of {len(data)} data bytes")
    return tensors, meta


def load_reference(path):
    if path.endswith(".safetensors"):
        return parse_by_hand(path)[0]
    ref = torch.load(path, map_location="cpu")
    if hasattr(ref, "state_dict"):
        ref = ref.state_dict()
    return {k: v.detach().float() for k, v in ref.items() if torch.is_tensor(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--reference")
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()

    tensors, meta = parse_by_hand(args.file)
    print(f"{args.file}: {len(tensors)} tensors, metadata keys {sorted(meta)}")
    if "training_state" in meta:
        print("training_state:", json.loads(meta["training_state"]))
    ok = True
    try:
        from safetensors.torch import load_file
    except ImportError:
        print("safetensors package not installed: checked with the hand parser only")
    else:
        lib = load_file(args.file)
        if set(lib) != set(tensors) or any(not torch.equal(lib[k], tensors[k]) for k in tensors):
            print("MISMATCH between the safetensors package and the hand parser")
            ok = False
        else:
            print("safetensors package agrees with the hand parser")
    if args.reference:
        for name, want in load_reference(args.reference).items():
            got = tensors.get(name)
            if got is None:
                print(f"MISSING {name}")
                ok = False
            elif tuple(got.shape) != tuple(want.shape):
                print(f"SHAPE {name}: {tuple(got.shape)} vs reference {tuple(want.shape)}")
                ok = False
            else:
                err = (got.double() - want.double()).abs().max().item() if want.numel() else 0.0
                if err > args.tol:
                    print(f"VALUES {name}: max abs difference {err:.3g} > {args.tol}")
                    ok = False
        print("reference comparison:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
