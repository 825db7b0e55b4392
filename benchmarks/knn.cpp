// W5: weighted k-NN evaluation, 60,000 train x 10,000 test features of dimension 256
// (Gaussian rows, L2-normalised), random labels 0..9, k = 20, T = 0.07, chunks of 1,000
// test rows. Timed end to end; reports test queries per second (median over repeats).
// Usage: knn [--threads N] [--repeats R] [--train N] [--test M] [--tile T (train rows per GEMM block)]
#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <ssl/core/parallel.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/eval/knn.hpp>
#include <vector>

#include "bench_util.hpp"
#include "peak_memory.hpp"

// (rows, dim) Gaussian rows scaled to unit length; row i drawn from its own stream.
static ssl::tensor<ssl::cpu> unit_rows(int64_t rows, int64_t dim, uint64_t seed) {
  ssl::tensor<ssl::cpu> x(ssl::shape{rows, dim});
  ssl::parallel_for(0, rows, [&](int64_t i) {
    ssl::rng g = ssl::rng(seed).fork(uint64_t(i));
    float* r = x.data() + i * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) {
      r[j] = g.normal();
      s += double(r[j]) * r[j];
    }
    const float inv = float(1.0 / std::sqrt(s));
    for (int64_t j = 0; j < dim; ++j) r[j] *= inv;
  });
  return x;
}

int main(int argc, char** argv) {
  const ssl_bench::memory_probe memory;  // baseline before the features
  const ssl_bench::args a{argc, argv};
  const int threads = ssl_bench::thread_count(a);
  ssl::set_num_threads(threads);
  Eigen::setNbThreads(threads);
  const int64_t n_train = a.value("--train", 60000), n_test = a.value("--test", 10000), dim = 256;
  const int repeats = int(a.value("--repeats", 3));

  const auto train = unit_rows(n_train, dim, 1), test = unit_rows(n_test, dim, 2);
  std::vector<int> ytr(static_cast<size_t>(n_train)), yte(static_cast<size_t>(n_test));
  ssl::rng g(3);
  for (auto& y : ytr) y = int(g.below(10));
  for (auto& y : yte) y = int(g.below(10));

  ssl::eval::knn_options o;  // k 20, T 0.07, chunk 1000
  o.train_tile = a.value("--tile", o.train_tile);
  double acc = 0;
  const auto t = ssl_bench::time_repeats([&] { acc = ssl::eval::knn_classify(train, ytr, test, yte, o).accuracy; }, 0,
                                         repeats, 0.0, repeats);
  std::printf("# threads %d, %lld x %lld x %lld, accuracy %.4f (chance 0.1)\n", threads, (long long)n_train,
              (long long)n_test, (long long)dim, acc);
  ssl_bench::describe("W5 knn_classify", t);
  ssl_bench::report("W5", "queries_per_s", double(n_test) / t.median, "queries/s");
  ssl_bench::report("W5", "seconds", t.median, "s");
  memory.report("W5");
  return 0;
}
