// Jigsaw puzzles on Fashion-MNIST: each 28x28 image is cut into 3x3 cells of 9x9 pixels, a 7x7 tile
// is taken at a random offset in each cell (2 pixels of jitter), the tiles are shuffled by one of 64
// maximal-Hamming permutations, and ConvNet-S (shared over the 9 tiles; 7x7 -> 1x1 before the pool)
// + a linear classifier on the 9 x 256 concatenated features predict the permutation. Adam.
// The encoder's BN running statistics come from 7x7 tiles; before evaluating on whole images they
// are re-estimated on the (unlabelled) train images, as for the random-init baseline. Both k-NN
// numbers are printed.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"Jigsaw puzzles (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  int64_t tile = 7;
  int permutations = 64;
  add_common_options(app, s, "images (puzzles) per step");
  add_ranks_option(app, s);
  app.add_option("--permutations", permutations, "size of the permutation set (classes)");
  app.add_option("--tile", tile, "tile side (at most 9 for 28x28 images)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const rng g(s.seed);
  jigsaw_method method(convnet_s<>(1, g),
                       projection_mlp<>({.in_dim = 9 * 256, .hidden_dim = 256, .out_dim = permutations, .layers = 1}, g.fork(1)),
                       {.permutations = permutations, .tile = tile, .seed = s.seed});
  // one view: flip only (the puzzle's own crops are the augmentation), normalised
  auto view = augment::multi_view{1, augment::compose(augment::horizontal_flip{0.5f}, augment::fashion_mnist_normalize())};
  char chance[32];
  std::snprintf(chance, sizeof chance, " (chance %.4f)", std::log(double(permutations)));
  train_with_adam(method, train, view, s, chance);
  const double as_trained = knn_accuracy(method.encoder(), train, test);
  eval::recalibrate_batch_norm(method.encoder(), train.images(), eval::fashion_mnist_normalization());
  const split_features f = features_of(method.encoder(), train, test);  // BN re-estimated
  const double acc = eval::knn_classify(f.train, train.labels(), f.test, test.labels()).accuracy;
  std::printf("Jigsaw ConvNet-S: k-NN %.2f%% with BN re-estimated on whole images (%.2f%% with the tiles' BN statistics)"
              "  (random init %.2f%%, %+.2f points)\n",
              100 * acc, 100 * as_trained, 100 * base, 100 * (acc - base));
  report_linear_probe("Jigsaw", f, train, test, s);
  report_alignment_uniformity("Jigsaw", method.encoder(), train, test, s);  // BN re-estimated, as the k-NN
  return 0;
}
