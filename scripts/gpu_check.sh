#!/usr/bin/env bash
# The one script to run when a GPU machine is available (issue 6). In under 4 minutes on one GPU:
#   1. builds test_cuda, the GPU benchmarks (benchmarks/cuda_*.cu) and the CPU W1 benchmark,
#      for the local GPU's architecture only (SSL_CUDA_ARCHITECTURES=native);
#   2. runs every CUDA parity test (each CUDA op against its CPU reference; full SimCLR, MAE and
#      DINO training steps on both backends, op-level; and the library's own classes instantiated
#      for the GPU -- every method, ResNet-18 -- against their <cpu> instantiations);
#   3. runs the GEMM (FP32 / TF32, n = 1024, 4096), W1, W2 (MAE) and W3 (DINO) benchmarks, the
#      CPU figures beside them (2 threads, as shared/WORKLOADS.md: W1 from the library's CPU
#      benchmark, W2 / W3 from the same op-level step code run on the CPU), and prints one table.
# Everything it prints also goes to $SSL_GPU_LOG (default build/gpu/gpu_check.log): paste that
# log into docs/performance.md. Exit status: non-zero when a test fails or W1 < 20x the CPU.
# Environment: SSL_GPU_BUILD (build folder), JOBS (parallel compile jobs, default nproc),
# CUDACXX (nvcc), W1_CPU_STEPS (timed CPU steps, default 5), W23_CPU_STEPS (timed CPU steps of
# W2 / W3 after 1 warm-up, default 1), SSL_GPU_BIN (a folder of binaries
# built elsewhere for this GPU's architecture, e.g. -DSSL_CUDA_ARCHITECTURES=90: skips the build;
# scripts/gpu_prebuild.sh makes one).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SSL_GPU_BUILD:-$root/build/gpu}
log=${SSL_GPU_LOG:-$build/gpu_check.log}
jobs=${JOBS:-$(nproc)}
nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
cpu_steps=${W1_CPU_STEPS:-5}
cpu_steps23=${W23_CPU_STEPS:-1}
mkdir -p "$build"
: > "$log"
say() { echo "$@" | tee -a "$log"; }
run() { "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }
t0=$SECONDS

say "== ssl gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
if command -v nvidia-smi > /dev/null; then
  run nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
fi
say "nvcc: $("$nvcc" --version | tail -1)"

# ---- build -------------------------------------------------------------------------
bin_test=$build/tests bin_bench=$build/benchmarks
if [[ -n ${SSL_GPU_BIN:-} ]]; then
  bin_test=$SSL_GPU_BIN bin_bench=$SSL_GPU_BIN
  say "using prebuilt binaries from $SSL_GPU_BIN"
else
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
run cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSSL_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DSSL_CUDA_ARCHITECTURES=native -DSSL_BUILD_TESTS=ON \
  -DSSL_BUILD_BENCHMARKS=ON -DSSL_BUILD_EXAMPLES=OFF > /dev/null
run cmake --build "$build" -j "$jobs" --target test_cuda cuda_gemm cuda_w1_simclr cuda_w2_mae cuda_w3_dino \
  w1_simclr | tail -3
fi
say "build: $((SECONDS - t0)) s"

# ---- parity tests --------------------------------------------------------------------
status=0
say "== CUDA parity tests"
if ! run "$bin_test/test_cuda"; then
  status=1
  say "!! CUDA parity tests FAILED"
fi

# ---- benchmarks --------------------------------------------------------------------------
say "== GPU benchmarks"
run "$bin_bench/cuda_gemm" || status=1
run "$bin_bench/cuda_w1_simclr" --cpu-steps 0 || status=1
say "== CPU W1 (the library's CPU path, 2 threads, same machine)"
OMP_NUM_THREADS=2 run "$bin_bench/w1_simclr" --threads 2 --steps "$cpu_steps" --warmup 1 || status=1
say "== W2 MAE and W3 DINO (GPU, then the same step code on the CPU, 2 threads)"
OMP_NUM_THREADS=2 run "$bin_bench/cuda_w2_mae" --threads 2 --cpu-steps "$cpu_steps23" || status=1
OMP_NUM_THREADS=2 run "$bin_bench/cuda_w3_dino" --threads 2 --cpu-steps "$cpu_steps23" || status=1

# ---- one table -----------------------------------------------------------------------------
value() { awk -v w="$1" -v m="$2" '$1 == "RESULT" && $2 == w && $3 == m { v = $4 } END { print v == "" ? "n/a" : v }' "$log"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.0f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.1fx", a / b }'; }
device=$(grep -m1 '^# device:' "$log" | cut -d: -f2- | sed 's/^ //')
peak32=$(value GPU_peak_fp32 tflops)
peak_tf=$(value GPU_peak_tf32 tflops)
{
  echo
  echo "== ssl GPU check: ${device:-no device}  (total $((SECONDS - t0)) s)"
  printf '%-28s %14s %14s %10s\n' "measure" "value" "reference" "ratio"
  for n in 1024 4096; do
    v=$(value "GPU_gemm_n${n}_fp32" tflops)
    printf '%-28s %14s %14s %10s\n' "GEMM n=$n FP32 TFLOP/s" "$v" "peak $peak32" "$(pct "$v" "$peak32")"
    v=$(value "GPU_gemm_n${n}_tf32" tflops)
    printf '%-28s %14s %14s %10s\n' "GEMM n=$n TF32 TFLOP/s" "$v" "peak $peak_tf" "$(pct "$v" "$peak_tf")"
  done
  g=$(value W1_gpu img_per_s)
  c=$(value W1 img_per_s)
  printf '%-28s %14s %14s %10s\n' "W1 SimCLR img/s" "$g" "cpu $c" "$(ratio "$g" "$c")"
  g=$(value W1lib_gpu img_per_s)
  printf '%-28s %14s %14s %10s\n' "W1 ssl::simclr<cuda> img/s" "$g" "cpu $c" "$(ratio "$g" "$c")"
  for w in "W2 MAE" "W3 DINO"; do
    k=${w%% *}
    g=$(value "${k}_gpu" img_per_s)
    c=$(value "${k}_cpu" img_per_s)
    printf '%-28s %14s %14s %10s\n' "$w img/s" "$g" "cpu $c" "$(ratio "$g" "$c")"
  done
} | tee -a "$log"
w1_ok=$(awk -v a="$(value W1_gpu img_per_s)" -v b="$(value W1 img_per_s)" \
  'BEGIN { print (a != "n/a" && b != "n/a" && a >= 20 * b) ? 1 : 0 }')
if [[ $w1_ok != 1 ]]; then
  say "!! W1 on the GPU is not at least 20x the CPU figure"
  status=1
fi
say "log: $log"
exit $status
