// Triplet metric learning on Fashion-MNIST without labels: two augmented views of each image share
// a pseudo-label, batch-hard mining picks the other view as the positive and the closest other image
// as the negative (cosine distance, margin 0.3). ConvNet-S + embedding head 256-256-128.
// Views: WORKLOADS.md Q3's Fashion-MNIST recipe. Adam. Reports k-NN beside the random-init encoder.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"Triplet loss with pseudo-labels (ConvNet-S) on Fashion-MNIST: report k-NN accuracy"};
  train_settings s;
  float margin = 0.3f;
  int threads = 2;
  std::string baseline_cache, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", s.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", s.epochs, "upper bound on epochs");
  app.add_option("--batch", s.batch, "images per step (two views each)");
  app.add_option("--lr", s.lr, "Adam learning rate");
  app.add_option("--margin", margin, "triplet margin (cosine distance)");
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
  triplet_method method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, g.fork(1)),
                        triplet_mining(triplet_strategy::batch_hard, margin, triplet_distance::cosine));
  return train_and_report(method, train, test, base, s, "Triplet");
}
