// Colorization on Fashion-MNIST tinted copies.
//
// Fashion-MNIST is greyscale, so this example builds RGB copies whose CIE lightness is the
// original image (L = 100 x) and whose colour is a fixed function of the garment's silhouette:
// hue from the ink coverage and the bounding-box aspect ratio, chroma growing with brightness.
// No labels are used, and colour is predictable only from shape (as colour correlates with
// object identity in natural images) — a synthetic stand-in for real colour data, not a claim
// about natural images. The method sees the lightness only and predicts the ab colour class of
// each cell of a 4x4 grid (quantized ab bins) with a linear head on ConvNet-S's features.
// Augmentation: affine crop (0.3, 1) + flip on the RGB copies. Adam. Reports k-NN on the original
// greyscale test images beside the random-init encoder's.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numbers>
#include <ssl/augment/presets.hpp>
#include <ssl/data/loader.hpp>
#include <ssl/data/mnist.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/eval/features.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/train/trainer.hpp>

using namespace ssl;

static double knn_accuracy(const convnet_s<>& enc, const data::in_memory_dataset& train, const data::in_memory_dataset& test) {
  const auto norm = eval::fashion_mnist_normalization();
  return eval::knn_classify(eval::extract_features(enc, train.images(), norm), train.labels(),
                            eval::extract_features(enc, test.images(), norm), test.labels())
      .accuracy;
}

/// k-NN of the random-init ConvNet-S (BN recalibrated), read from / written to `cache` when given
/// (the baseline depends only on the seed, so several examples can share it).
static double random_init_knn(const data::in_memory_dataset& train, const data::in_memory_dataset& test, uint64_t seed,
                              const std::string& cache) {
  if (!cache.empty()) {
    std::ifstream in(cache);
    uint64_t s = 0;
    double v = 0;
    if (in >> s >> v && s == seed) return v;
  }
  convnet_s<> random_enc(1, rng(seed));
  eval::recalibrate_batch_norm(random_enc, train.images(), eval::fashion_mnist_normalization());
  const double v = knn_accuracy(random_enc, train, test);
  if (!cache.empty()) std::ofstream(cache) << seed << ' ' << v << '\n';
  return v;
}

/// images (N, 1, H, W) in [0, 1] -> (N, 3, H, W) sRGB with L = 100 x and a silhouette-dependent hue.
static tensor<cpu> tint(const tensor<cpu>& images) {
  const int64_t N = images.dim(0), H = images.dim(2), W = images.dim(3), P = H * W;
  tensor<cpu> out(shape{N, 3, H, W});
  parallel_for(0, N, [&](int64_t n) {
    const float* x = images.data() + n * P;
    int64_t ink = 0, top = H, bottom = -1, left = W, right = -1;
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j)
        if (x[i * W + j] > 0.1f) {
          ++ink;
          top = std::min(top, i), bottom = std::max(bottom, i), left = std::min(left, j), right = std::max(right, j);
        }
    const double coverage = double(ink) / double(P);
    const double aspect = bottom >= top ? double(right - left + 1) / double(bottom - top + 1) : 1.0;
    const double hue = 2 * std::numbers::pi * (1.5 * coverage + 0.35 * std::log2(aspect));
    float* o = out.data() + n * 3 * P;
    for (int64_t p = 0; p < P; ++p) {
      const double chroma = 45.0 * x[p];
      const auto rgb = pretext::detail::lab_to_rgb(100.0 * x[p], chroma * std::cos(hue), chroma * std::sin(hue));
      o[p] = float(rgb[0]), o[P + p] = float(rgb[1]), o[2 * P + p] = float(rgb[2]);
    }
  }, 64);
  return out;
}

int main(int argc, char** argv) {
  CLI::App app{"Colorization (ConvNet-S) on tinted Fashion-MNIST: train without labels, report k-NN accuracy"};
  double minutes = 3;
  int64_t epochs = 100, batch = 256, grid = 4;
  float lr = 1e-3f;
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  std::string csv, baseline_cache, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", epochs, "upper bound on epochs");
  app.add_option("--batch", batch, "images per step");
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--grid", grid, "cells per side whose colour is predicted");
  app.add_option("--seed", seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", csv, "per-step CSV log");
  app.add_option("--baseline-cache", baseline_cache, "file caching the random-init k-NN (seed and accuracy)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  const double base = random_init_knn(train, test, seed, baseline_cache);
  std::printf("random-init ConvNet-S: k-NN %.2f%%\n", 100 * base);

  const data::in_memory_dataset tinted(tint(train.images()));  // no labels
  const auto bins = pretext::ab_quantizer::from_gamut(32);
  const rng g(seed);
  colorization_method method(
      convnet_s<>(1, g),
      projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = grid * grid * bins.bins(), .layers = 1}, g.fork(1)),
      {.grid = grid}, bins);
  std::printf("predicting %lldx%lld cells x %lld ab bins\n", (long long)grid, (long long)grid, (long long)bins.bins());
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = lr, .weight_decay = 0.0f});
  augment::affine_resized_crop crop;
  crop.scale_lo = 0.3f;
  auto view = augment::multi_view{1, augment::compose(crop, augment::horizontal_flip{0.5f})};
  data::loader loader(tinted, view, {.batch_size = batch, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed});
  trainer_options to;
  to.epochs = epochs;
  to.budget_seconds = minutes * 60;
  to.csv_log = csv;
  const train_summary sum = ssl::train(method, opt, loader, to);
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f\n", (long long)sum.steps,
              double(sum.steps) / double(loader.steps_per_epoch()), sum.seconds, sum.images_per_second,
              sum.mean_loss_last_100);
  const double acc = knn_accuracy(method.encoder(), train, test);
  std::printf("Colorization ConvNet-S: k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", 100 * acc, 100 * base,
              100 * (acc - base));
  return 0;
}
