#!/usr/bin/env bash
# Fuzz smoke test of the data/image parsers (gzip, IDX, CIFAR, PNG/JPEG/BMP via stb_image)
# under AddressSanitizer + UndefinedBehaviorSanitizer. Builds only tests/fuzz/ in its own
# build folder and runs it; exit status 0 when every mutated input was parsed or rejected with
# a typed ssl::error and no sanitizer fired. Usage: scripts/fuzz_asan.sh [iterations] [seed]
#   (default 4000 inputs per parser, seed 1: well under 3 minutes on 2 cores).
# UBSan's nonnull-attribute check is off: stb_image calls memcpy(NULL, p, 0) on empty PNG
# chunks (stbi__getn), which is harmless; every other UB report aborts the run.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-4000}"
seed="${2:-1}"
build=build/fuzz-asan
mkdir -p "$build"
cxx="${CXX:-g++}"
eigen_inc="$(pkg-config --cflags-only-I eigen3 2>/dev/null || echo -I/usr/include/eigen3)"
launcher=(); command -v ccache >/dev/null && launcher=(ccache)
"${launcher[@]}" "$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=address,undefined -fno-sanitize=nonnull-attribute -fno-sanitize-recover=undefined \
  -Wall -Wextra -Wno-unused-parameter -fopenmp -Iinclude -Itests $eigen_inc \
  tests/fuzz/parsers_fuzz_main.cpp -o "$build/parsers_fuzz"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
time "$build/parsers_fuzz" "$iterations" "$seed"
