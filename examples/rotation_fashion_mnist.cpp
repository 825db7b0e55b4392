// Rotation prediction (RotNet) on Fashion-MNIST: every (augmented) image is shown at 0, 90, 180 and
// 270 degrees; ConvNet-S + a linear 4-way classifier learn which. One view per image (affine crop
// (0.3, 1), flip, brightness/contrast as WORKLOADS.md Q3); each step sees 4x the batch. Adam.
// Reports k-NN on the test set beside the random-init encoder's (BN recalibrated).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"Rotation prediction (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  s.batch = 128;
  add_common_options(app, s, "images per step (4 rotations each)");
  add_ranks_option(app, s);
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const rng g(s.seed);
  // a linear classifier: a one-layer projection_mlp (256 -> 4)
  rotation_method method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 4, .layers = 1}, g.fork(1)));
  auto view = augment::fashion_mnist_simclr(28);
  view.views = 1;
  train_with_adam(method, train, view, s);
  report_encoder("Rotation", method.encoder(), train, test, base, s);
  return 0;
}
