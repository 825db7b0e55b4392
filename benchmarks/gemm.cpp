// W4: float32 C = A B for square n in {256, 512, 1024, 2048}; GFLOP/s = 2 n^3 / median time
// (1 warm-up call, then >= 3 calls and >= 1 s of calls).
//   W4_n<n>          ssl::ops::gemm (the library's packed register-tile GEMM, or OpenBLAS when built
//                    with SSL_USE_OPENBLAS)
//   W4_n<n>_openblas cblas_sgemm called directly (when the build found OpenBLAS)
// Usage: gemm [--threads N] [--quick]   (--quick: 0.3 s of calls per size)
#include <Eigen/Core>
#include <cstdio>
#include <ssl/backend/cpu/gemm.hpp>
#include <ssl/core/parallel.hpp>
#include <ssl/core/rng.hpp>
#include <string>

#include "bench_util.hpp"
#include "peak_memory.hpp"

#if defined(SSL_BENCH_HAVE_OPENBLAS)
#include <cblas.h>
#endif

int main(int argc, char** argv) {
  const ssl_bench::memory_probe memory;  // baseline before the matrices
  const ssl_bench::args a{argc, argv};
  const int threads = ssl_bench::thread_count(a);
  const double min_seconds = a.flag("--quick") ? 0.3 : 1.0;
  ssl::set_num_threads(threads);
  Eigen::setNbThreads(threads);
#if defined(SSL_BENCH_HAVE_OPENBLAS)
  openblas_set_num_threads(threads);
#endif
#if defined(SSL_USE_OPENBLAS)
  std::printf("# ssl::ops::gemm path: OpenBLAS (SSL_USE_OPENBLAS)\n");
#else
  std::printf("# ssl::ops::gemm path: Eigen %d.%d.%d\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
#endif
  std::printf("# threads %d\n", threads);
  for (int64_t n : {256, 512, 1024, 2048}) {
    ssl::tensor<ssl::cpu> A(ssl::shape{n, n}), B(ssl::shape{n, n}), C(ssl::shape{n, n});
    ssl::rng g{uint64_t(n)};
    for (int64_t i = 0; i < A.numel(); ++i) A[i] = g.uniform(), B[i] = g.uniform();
    const double flop = 2.0 * double(n) * double(n) * double(n);
    const std::string w = "W4_n" + std::to_string(n);

    auto t = ssl_bench::time_repeats(
        [&] {
          ssl::ops::gemm(ssl::cpu{}, ssl::ops::trans::no, ssl::ops::trans::no, n, n, n, 1.0f, A.data(), n, B.data(), n,
                         0.0f, C.data(), n);
        },
        1, 3, min_seconds);
    ssl_bench::describe(w + " ssl::ops::gemm", t);
    ssl_bench::report(w, "gflops", flop / t.median * 1e-9, "GFLOP/s");
#if defined(SSL_BENCH_HAVE_OPENBLAS)
    t = ssl_bench::time_repeats(
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f, A.data(), int(n),
                      B.data(), int(n), 0.0f, C.data(), int(n));
        },
        1, 3, min_seconds);
    ssl_bench::describe(w + " cblas_sgemm", t);
    ssl_bench::report(w + "_openblas", "gflops", flop / t.median * 1e-9, "GFLOP/s");
#endif
  }
  memory.report("W4");  // peak over all sizes (n = 2048: three 16 MiB matrices)
  return 0;
}
