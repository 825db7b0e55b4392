#!/usr/bin/python3
"""Writes every golden-value fixture under tests/fixtures/ (PyTorch, CPU, float64 math
rounded to float32 inputs). Each module in scripts/fixtures/ covers one folder of tests."""
import importlib
import os
import pkgutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402

for m in sorted(pkgutil.iter_modules(fixtures.__path__), key=lambda m: m.name):
    if m.name != "common":
        importlib.import_module("fixtures." + m.name).main()
