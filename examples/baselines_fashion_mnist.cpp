// The reference rows of docs/results.md, measured with this library on Fashion-MNIST (no training):
//   pixels   raw pixels, 784-d: the [0, 1] image flattened (WORKLOADS.md Q1, PyTorch 84.59%), and
//            k-NN only on the normalised image (x - 0.2860) / 0.3530 flattened (cosine k-NN is not
//            invariant to the shift; the linear probe standardises features, so it is the same for both)
//   convnet  random-init ConvNet-S (rng(seed)), BN running statistics recalibrated on the train images
//   vit      random-init ViT-T/4 (rng(seed)): [CLS] token and mean of the 49 patch tokens (after the final norm)
// Each row: k-NN (k = 20, T = 0.07, eval::knn_classify) on the 10,000 test images with the 60,000
// train images as memory bank, and unless --no-linear-probe the linear probe (eval::linear_probe:
// L-BFGS logistic regression on standardised features). One printed line per row.
//   baselines_fashion_mnist                          all rows, with linear probes
//   baselines_fashion_mnist --only pixels,vit --no-linear-probe
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ssl/ssl.hpp>
#include <string>
#include <vector>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

namespace {

struct row_scores {
  double knn = 0, linear = -1;  // linear = -1: not probed
};

row_scores score(const tensor<cpu>& train_x, const data::in_memory_dataset& train, const tensor<cpu>& test_x,
                 const data::in_memory_dataset& test, bool probe) {
  row_scores r;
  r.knn = eval::knn_classify(train_x, train.labels(), test_x, test.labels()).accuracy;
  if (probe) r.linear = eval::linear_probe(train_x, train.labels(), test_x, test.labels()).test_accuracy;
  return r;
}

void print_row(const char* name, double knn, double linear) {
  if (linear >= 0)
    std::printf("%-42s k-NN %.2f%%  linear probe %.2f%%\n", name, 100 * knn, 100 * linear);
  else
    std::printf("%-42s k-NN %.2f%%\n", name, 100 * knn);
  std::fflush(stdout);
}

// images: (N, 1, 28, 28) in [0, 1] -> (N, 784), as they are or normalised with the Fashion-MNIST statistics.
tensor<cpu> raw_pixels(const tensor<cpu>& images, bool normalized) {
  const int64_t N = images.dim(0);
  const shape flat{N, images.numel() / std::max<int64_t>(N, 1)};
  if (!normalized) return images.reshaped(flat);
  return eval::normalized_slice(images, 0, N, eval::fashion_mnist_normalization()).reshaped(flat);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reference rows on Fashion-MNIST: raw pixels, random-init ConvNet-S and ViT-T/4 (k-NN, linear probe)"};
  uint64_t seed = 0;
  int threads = 2;
  bool no_probe = false;
  std::vector<std::string> only;
  std::string data_dir = data::fashion_mnist_dir(), baseline_cache;
  app.add_option("--seed", seed, "seed of the random-init encoders");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_flag("--no-linear-probe", no_probe, "k-NN only (the linear probes take minutes each)");
  app.add_option("--only", only, "rows to measure (any of pixels, convnet, vit; default all)")
      ->delimiter(',')
      ->check(CLI::IsMember({"pixels", "convnet", "vit"}));
  app.add_option("--baseline-cache", baseline_cache,
                 "file caching the random-init ViT-T/4 scores (shared with mae/maskfeat_fashion_mnist)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  const bool probe = !no_probe;
  auto wanted = [&](const char* row) { return only.empty() || std::find(only.begin(), only.end(), row) != only.end(); };

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  std::printf("Fashion-MNIST: %lld train, %lld test images; seed %llu\n", (long long)train.size(),
              (long long)test.size(), (unsigned long long)seed);

  if (wanted("pixels")) {
    const row_scores r =
        score(raw_pixels(train.images(), false), train, raw_pixels(test.images(), false), test, probe);
    print_row("raw pixels (784-d, [0, 1]):", r.knn, r.linear);
    const row_scores n = score(raw_pixels(train.images(), true), train, raw_pixels(test.images(), true), test, false);
    print_row("raw pixels (784-d, normalised):", n.knn, -1);
  }
  if (wanted("convnet")) {
    const auto norm = eval::fashion_mnist_normalization();
    convnet_s<> enc(1, rng(seed));
    eval::recalibrate_batch_norm(enc, train.images(), norm);
    const row_scores r = score(eval::extract_features(enc, train.images(), norm), train,
                               eval::extract_features(enc, test.images(), norm), test, probe);
    print_row("random-init ConvNet-S (BN recalibrated):", r.knn, r.linear);
  }
  if (wanted("vit")) {
    const vit_scores v = random_init_vit_scores(train, test, seed, probe, baseline_cache);
    print_row("random-init ViT-T/4 [CLS]:", v.knn_cls, v.linear_cls);
    print_row("random-init ViT-T/4 mean-pooled:", v.knn_mean, v.linear_mean);
  }
  return 0;
}
