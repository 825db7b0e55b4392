// The reference rows of docs/results.md, measured with this library on Fashion-MNIST (no training):
//   pixels   raw pixels, 784-d: the [0, 1] image flattened (WORKLOADS.md Q1, PyTorch 84.59%), and
//            k-NN only on the normalised image (x - 0.2860) / 0.3530 flattened (cosine k-NN is not
//            invariant to the shift; the linear probe standardises features, so it is the same for both)
//   convnet  random-init ConvNet-S (rng(seed)), BN running statistics recalibrated on the train images
//   vit      random-init ViT-T/4 (rng(seed)): [CLS] token and mean of the 49 patch tokens (after the final norm)
// Each row: k-NN (k = 20, T = 0.07, eval::knn_classify) on the 10,000 test images with the 60,000
// train images as memory bank, and unless --no-linear-probe the linear probe (eval::linear_probe:
// L-BFGS logistic regression on standardised features). One printed line per row, then (unless
// --no-geometry) its alignment / uniformity (Wang & Isola) on two SimCLR (Q3) views of every test
// image, the pairs every example uses (example_support.hpp's test_view_pairs): the reference for the
// geometry lines of the training examples.
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

void print_geometry(const char* name, const eval::alignment_uniformity_result& g) {
  std::printf("%-42s alignment %.3f, uniformity %.3f (lower is better)\n", name, g.alignment, g.uniformity);
  std::fflush(stdout);
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

// Ready (already normalised) views (N, C, H, W) -> (N, C*H*W).
tensor<cpu> raw_pixels_of_ready(const tensor<cpu>& views) {
  const int64_t N = views.dim(0);
  return views.reshaped(shape{N, views.numel() / std::max<int64_t>(N, 1)});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reference rows on Fashion-MNIST: raw pixels, random-init ConvNet-S and ViT-T/4 (k-NN, linear probe)"};
  uint64_t seed = 0;
  int threads = 2;
  bool no_probe = false, no_geometry = false;
  std::vector<std::string> only;
  std::string data_dir = data::fashion_mnist_dir(), baseline_cache;
  app.add_option("--seed", seed, "seed of the random-init encoders");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_flag("--no-linear-probe", no_probe, "k-NN only (the linear probes take minutes each)");
  app.add_flag("--no-geometry", no_geometry, "no alignment / uniformity lines");
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

  const eval::view_pairs pairs = no_geometry ? eval::view_pairs{} : test_view_pairs(test);

  if (wanted("pixels")) {
    const row_scores r =
        score(raw_pixels(train.images(), false), train, raw_pixels(test.images(), false), test, probe);
    print_row("raw pixels (784-d, [0, 1]):", r.knn, r.linear);
    const row_scores n = score(raw_pixels(train.images(), true), train, raw_pixels(test.images(), true), test, false);
    print_row("raw pixels (784-d, normalised):", n.knn, -1);
    // the views are normalised images: the geometry of the normalised pixel vectors
    if (!no_geometry) print_geometry("  normalised pixels:", eval::alignment_uniformity(raw_pixels_of_ready(pairs.x), raw_pixels_of_ready(pairs.y)));
  }
  if (wanted("convnet")) {
    const auto norm = eval::fashion_mnist_normalization();
    convnet_s<> enc(1, rng(seed));
    eval::recalibrate_batch_norm(enc, train.images(), norm);
    const row_scores r = score(eval::extract_features(enc, train.images(), norm), train,
                               eval::extract_features(enc, test.images(), norm), test, probe);
    print_row("random-init ConvNet-S (BN recalibrated):", r.knn, r.linear);
    if (!no_geometry) print_geometry("  random-init ConvNet-S:", view_geometry(enc, pairs));
  }
  if (wanted("vit")) {
    const vit_scores v = random_init_vit_scores(train, test, seed, probe, baseline_cache);
    print_row("random-init ViT-T/4 [CLS]:", v.knn_cls, v.linear_cls);
    print_row("random-init ViT-T/4 mean-pooled:", v.knn_mean, v.linear_mean);
    if (!no_geometry) {
      const vit_geometry g = random_init_vit_geometry(pairs, seed, baseline_cache);
      print_geometry("  random-init ViT-T/4 [CLS]:", g.cls);
      print_geometry("  random-init ViT-T/4 mean-pooled:", g.mean);
    }
  }
  return 0;
}
