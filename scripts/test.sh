#!/usr/bin/env bash
# The test command: installs dependencies, builds everything (CPU; CUDA tests too when
# nvcc exists), runs the Catch2 suites through ctest, and builds a consumer project
# against the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
export PATH="/usr/local/cuda/bin:$PATH"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.ccache}"
# cache hits across clones in different folders (CI builds a fresh clone each time)
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
launcher=(); command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
build=build/ci
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PWD/build/ci-install" "${launcher[@]}"
cmake --build "$build" -j2
(cd "$build" && OMP_NUM_THREADS=2 ctest --output-on-failure -j1)
# parsers under AddressSanitizer + UBSan: thousands of random and mutated inputs
bash scripts/fuzz_asan.sh 3000 1
# find_package(ssl CONFIG REQUIRED) from a separate project against the installed package
cmake --install "$build" >/dev/null
cmake -S examples/consumer -B build/ci-consumer -G Ninja -DCMAKE_PREFIX_PATH="$PWD/build/ci-install" "${launcher[@]}"
cmake --build build/ci-consumer -j2
./build/ci-consumer/consumer
