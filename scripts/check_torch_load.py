#!/usr/bin/python3
"""Checks that an ssl training checkpoint loads in PyTorch with the three lines of docs/pytorch.md
and that PyTorch then computes the same ConvNet-S features as ssl.

    /usr/bin/python3 scripts/check_torch_load.py --build build/lead [--checkpoint FILE]

Without --checkpoint, trains SimCLR for --minutes (default 0.2) with <build>/examples/ssl_train to
make one. Then runs <build>/examples/export_features (ssl's features of 256 test images), executes
the snippet of docs/pytorch.md verbatim, and compares. Exit status 0 when everything matches.
Needs the safetensors package (pip install safetensors). Not part of the C++ test suite.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConvNetS(nn.Sequential):
    """ConvNet-S of shared/WORKLOADS.md with ssl's names: 4 x [conv3x3 (no bias), BN, ReLU] as
    children 0..11 (strides 1, 2, 2, 2); forward() adds the global average pool."""

    def __init__(self):
        layers, cin = [], 1
        for cout, stride in [(32, 1), (64, 2), (128, 2), (256, 2)]:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        super().__init__(*layers)

    def forward(self, x):
        return super().forward(x).mean(dim=(2, 3))


def snippet_from_docs():
    text = open(os.path.join(ROOT, "docs", "pytorch.md")).read()
    m = re.search(r"<!-- snippet: load-encoder[^>]*-->\s*```python\n(.*?)```", text, re.S)
    if not m:
        sys.exit("docs/pytorch.md: the load-encoder snippet is missing")
    lines = [l for l in m.group(1).splitlines() if l.strip()]
    if len(lines) != 3:
        sys.exit(f"docs/pytorch.md: the snippet has {len(lines)} lines, the docs promise three")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "lead"), help="CMake build folder with examples")
    ap.add_argument("--checkpoint", help="an ssl_train checkpoint of a ConvNet-S method (default: train one)")
    ap.add_argument("--minutes", type=float, default=0.2, help="training budget when no checkpoint is given")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ssl_torch_load_")
    ckpt = args.checkpoint
    if not ckpt:
        ckpt = os.path.join(tmp, "simclr.safetensors")
        subprocess.run([os.path.join(args.build, "examples", "ssl_train"), "--method", "simclr", "--minutes",
                        str(args.minutes), "--checkpoint", ckpt], check=True, stdout=subprocess.DEVNULL)
    feats_path = os.path.join(tmp, "features.safetensors")
    subprocess.run([os.path.join(args.build, "examples", "export_features"), "--checkpoint", ckpt, "--out",
                    feats_path, "--count", "256"], check=True)

    from safetensors.torch import load_file
    # The documented lines, run as they are written, on this checkpoint.
    scope = {"encoder": ConvNetS()}
    code = snippet_from_docs().replace('"simclr.safetensors"', repr(ckpt))
    exec(code, scope)
    encoder, missing, unexpected = scope["encoder"], scope["missing"], scope["unexpected"]
    bad_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    ok = True
    if bad_missing or unexpected:
        print(f"FAIL: missing {bad_missing}, unexpected {unexpected}")
        ok = False
    ref = load_file(feats_path)
    encoder.eval()
    with torch.no_grad():
        ours = encoder(ref["images"])
    scale = ref["features"].abs().max().item()
    err = (ours - ref["features"]).abs().max().item() / max(scale, 1e-12)
    print(f"checkpoint {ckpt}: {len(scope['weights'])} encoder tensors loaded; "
          f"features of 256 test images, max |torch - ssl| / max |ssl| = {err:.2e}")
    if not err < 1e-4:
        print("FAIL: PyTorch's features differ from ssl's")
        ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
