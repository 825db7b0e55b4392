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
  int threads = 2;
  std::string baseline_cache, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", s.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", s.epochs, "upper bound on epochs");
  app.add_option("--batch", s.batch, "images per step (4 rotations each)");
  app.add_option("--lr", s.lr, "Adam learning rate");
  app.add_option("--seed", s.seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", s.workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", s.csv, "per-step CSV log");
  app.add_option("--baseline-cache", baseline_cache, "file caching the random-init k-NN (seed and accuracy)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  const double base = report_random_init_knn(train, test, s.seed, baseline_cache);

  const rng g(s.seed);
  // a linear classifier: a one-layer projection_mlp (256 -> 4)
  rotation_method method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 4, .layers = 1}, g.fork(1)));
  auto view = augment::fashion_mnist_simclr(28);
  view.views = 1;
  train_with_adam(method, train, view, s);
  report_knn("Rotation", knn_accuracy(method.encoder(), train, test), base);
  return 0;
}
