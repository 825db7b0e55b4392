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
#include <numbers>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

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
  train_settings s;
  int64_t grid = 4;
  add_common_options(app, s, "images per step");
  add_ranks_option(app, s);
  app.add_option("--grid", grid, "cells per side whose colour is predicted");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const data::in_memory_dataset tinted(tint(train.images()));  // no labels
  const auto bins = pretext::ab_quantizer::from_gamut(32);
  const rng g(s.seed);
  colorization_method method(
      convnet_s<>(1, g),
      projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = grid * grid * bins.bins(), .layers = 1}, g.fork(1)),
      {.grid = grid}, bins);
  std::printf("predicting %lldx%lld cells x %lld ab bins\n", (long long)grid, (long long)grid, (long long)bins.bins());
  augment::affine_resized_crop crop;
  crop.scale_lo = 0.3f;
  auto view = augment::multi_view{1, augment::compose(crop, augment::horizontal_flip{0.5f})};
  train_with_adam(method, tinted, view, s);
  report_encoder("Colorization", method.encoder(), train, test, base, s);
  return 0;
}
