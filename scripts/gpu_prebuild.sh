#!/usr/bin/env bash
# Builds the GPU check's binaries on this (GPU-less) machine for one architecture and copies them
# into one folder, so that a lent GPU machine spends its time running, not compiling:
#   scripts/gpu_prebuild.sh [arch=90] [out=.gpu/bin]   then on the GPU machine:
#   SSL_GPU_BIN=.gpu/bin scripts/gpu_check.sh
# (.gpu/ is for .git/info/exclude; the binaries need only libcudart/cublas/gomp there.)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=${1:-90}
out=${2:-$root/.gpu/bin}
build=$root/build/gpu$arch
targets=(test_cuda cuda_gemm cuda_w1_simclr cuda_w2_mae cuda_w3_dino w1_simclr)
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSSL_ENABLE_CUDA=ON \
  -DSSL_CUDA_ARCHITECTURES="$arch" -DSSL_BUILD_TESTS=ON -DSSL_BUILD_BENCHMARKS=ON -DSSL_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}"
mkdir -p "$out"
for t in "${targets[@]}"; do
  f=$(find "$build" -maxdepth 2 -type f -name "$t" -perm -u+x | head -1)
  cp "$f" "$out/"
done
# libgomp travels with them in case the GPU machine's image lacks it
cp "$(g++ -print-file-name=libgomp.so.1)" "$out/" 2> /dev/null || true
ls -la "$out"
