#!/usr/bin/env bash
# The main job: installs dependencies, builds the example, trains SimCLR (ConvNet-S) on the real
# Fashion-MNIST train set for 5 minutes without labels, and prints its k-NN test accuracy beside
# a random-init encoder's. Extra arguments go to the program (e.g. --minutes 15 --linear-probe).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
launcher=(); command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build/main -G Ninja -DCMAKE_BUILD_TYPE=Release -DSSL_BUILD_TESTS=OFF -DSSL_BUILD_BENCHMARKS=OFF \
  -DSSL_ENABLE_CUDA=OFF "${launcher[@]}" >/dev/null
cmake --build build/main -j2 --target simclr_fashion_mnist ssl_train
# 5 minutes unless the caller gives --minutes
args=("$@"); [[ " $* " == *" --minutes "* ]] || args=(--minutes 5 "${args[@]}")
OMP_NUM_THREADS=2 ./build/main/examples/simclr_fashion_mnist "${args[@]}"
