// NT-Xent forward + backward at N = 4096 pairs (2N = 8192 rows), d = 128, T = 0.5.
// Prints the median ms of a few runs; benchmarks/torch_nt_xent.py times the same in PyTorch.
//   OMP_NUM_THREADS=2 ./nt_xent [runs]
#include <algorithm>
#include <chrono>
#include <sys/resource.h>
#include <cstdio>
#include <cstdlib>
#include <ssl/core/parallel.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/losses/nt_xent.hpp>
#include <vector>

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t pairs = 4096, dim = 128;
  ssl::set_num_threads(2);
  Eigen::setNbThreads(2);
  ssl::tensor<ssl::cpu> z(ssl::shape{2 * pairs, dim});
  ssl::rng g(0);
  for (int64_t i = 0; i < z.numel(); ++i) z[i] = g.normal();
  const ssl::nt_xent loss(0.5f);

  float value = 0;
  std::vector<double> ms;
  for (int r = 0; r < runs + 1; ++r) {  // one warm-up run
    const auto t0 = std::chrono::steady_clock::now();
    const auto res = loss(z);
    const auto t1 = std::chrono::steady_clock::now();
    value = res.value;
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("nt_xent fwd+bwd N=%lld pairs d=%lld threads=%d: median %.1f ms over %d runs (loss %.5f)\n",
              (long long)pairs, (long long)dim, ssl::num_threads(), ms[ms.size() / 2], runs, value);
  // Evidence for "one similarity matrix": the peak resident set, against one (2N, 2N) float matrix.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS %.0f MiB; one (2N, 2N) float matrix is %.0f MiB\n", double(usage.ru_maxrss) / 1024.0,
              double(4 * pairs * pairs) * 4.0 / (1024.0 * 1024.0));
  return 0;
}
