// Augmentation throughput: the SimCLR view policy (crop, flip, p 0.8 colour jitter
// (0.8, 0.8, 0.8, 0.2), p 0.2 greyscale, p 0.5 Gaussian blur (kernel 10% of the side,
// sigma (0.1, 2)), normalise), two views per image, on float (C, H, W) images:
//   28x28: 1 channel (Fashion-MNIST shaped); 96x96: 3 channels (STL-10 shaped).
// Reports augmented views per second, single-threaded (one data-loader worker) and over
// --threads threads (parallel over images, one rng stream per image).
// Compare with benchmarks/torch_augment.py (torchvision, same policy) on the same machine.
// Usage: augment [--threads N] [--images N]
#include <cstdio>
#include <ssl/augment.hpp>
#include <ssl/core/parallel.hpp>
#include <vector>

#include "bench_util.hpp"

namespace aug = ssl::augment;

static std::vector<ssl::tensor<ssl::cpu>> random_images(int n, int c, int side) {
  std::vector<ssl::tensor<ssl::cpu>> out;
  ssl::rng g(7);
  for (int i = 0; i < n; ++i) {
    ssl::tensor<ssl::cpu> t(ssl::shape{c, side, side});
    for (int64_t k = 0; k < t.numel(); ++k) t[k] = g.uniform();
    out.push_back(std::move(t));
  }
  return out;
}

template <class Policy>
static void run(const char* name, const Policy& policy, const std::vector<ssl::tensor<ssl::cpu>>& images, int threads) {
  const int64_t n = int64_t(images.size());
  std::vector<std::vector<ssl::tensor<ssl::cpu>>> views(images.size());
  uint64_t epoch = 0;
  auto pass = [&] {
    ++epoch;
    ssl::parallel_for(0, n, [&](int64_t i) {
      ssl::rng g = ssl::rng(epoch).fork(uint64_t(i));
      views[size_t(i)] = policy(images[size_t(i)], g);
    });
  };
  for (int t : {1, threads}) {
    ssl::set_num_threads(t);
    const auto timing = ssl_bench::time_repeats(pass, 1, 5, 1.0);
    const double views_per_s = 2.0 * double(n) / timing.median;
    ssl_bench::describe(std::string(name) + " threads " + std::to_string(t), timing);
    ssl_bench::report(std::string(name) + "_t" + std::to_string(t), "views_per_s", views_per_s);
    if (t == threads) break;
  }
}

int main(int argc, char** argv) {
  const ssl_bench::args a{argc, argv};
  const int threads = ssl_bench::thread_count(a);
  const int n = int(a.value("--images", 512));
  run("augment_simclr_28", aug::simclr_views(28, aug::fashion_mnist_normalize()), random_images(n, 1, 28), threads);
  run("augment_simclr_96", aug::simclr_views(96, aug::imagenet_normalize()), random_images(n, 3, 96), threads);
  ssl::set_num_threads(threads);
  return 0;
}
