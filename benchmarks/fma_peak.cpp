// The machine's measured FP32 FMA peak (the reference of issue 7's alternative bar: a workload
// at >= 80 % of it is compute-bound at the hardware's limit). Each thread runs `chains`
// independent FMA chains on the widest native vector (AVX-512: 16 floats, AVX: 8, else 4), enough
// to cover the FMA latency x throughput of current cores, so nothing but the FMA units limits it.
//   GFLOP/s = threads x iterations x chains x lanes x 2 / seconds      (median of 5 runs)
//   RESULT FMA_peak gflops <v>
// Usage: fma_peak [--threads N]
#include <immintrin.h>
#include <omp.h>

#include <cstdio>

#include "bench_util.hpp"

namespace {
#if defined(__AVX512F__)
constexpr int lanes = 16;
#elif defined(__AVX__)
constexpr int lanes = 8;
#else
constexpr int lanes = 4;
#endif
typedef float vec __attribute__((vector_size(lanes * sizeof(float))));
constexpr int chains = 16;

// a x + b as one fused instruction where the ISA has it.
inline vec fma(vec x, vec a, vec b) {
#if defined(__AVX512F__)
  return vec(_mm512_fmadd_ps(__m512(x), __m512(a), __m512(b)));
#elif defined(__FMA__)
  return vec(_mm256_fmadd_ps(__m256(x), __m256(a), __m256(b)));
#else
  return x * a + b;  // no FMA instruction: the peak counts a multiply and an add
#endif
}
constexpr long iterations = 20'000'000;

// acc_c = acc_c * a + b for every chain, `iterations` times; returns a checksum so that the
// compiler keeps the work.
float fma_chains(float seed) {
  vec acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = vec{} + (seed + float(c));
  const vec a = vec{} + 0.999999f, b = vec{} + 1e-7f;
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < chains; ++c) acc[c] = fma(acc[c], a, b);
  float s = 0;
  for (int c = 0; c < chains; ++c)
    for (int l = 0; l < lanes; ++l) s += acc[c][l];
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  const ssl_bench::args a{argc, argv};
  const int threads = ssl_bench::thread_count(a);
  volatile float sink = 0;
  const ssl_bench::timing t = ssl_bench::time_repeats(
      [&] {
#pragma omp parallel num_threads(threads)
        {
          const float s = fma_chains(float(omp_get_thread_num()));
#pragma omp critical
          sink = sink + s;
        }
      },
      1, 5, 0.0, 5);
  const double flop = double(threads) * double(iterations) * chains * lanes * 2.0;
  std::printf("# FP32 FMA peak: %d threads, %d-float vectors, %d chains\n", threads, lanes, chains);
  ssl_bench::describe("FMA peak", t);
  ssl_bench::report("FMA_peak", "gflops", flop / t.median / 1e9);
  return 0;
}
