// MoCo v2 (or MoCo v3 with --v3) on Fashion-MNIST.
//
// v2: ConvNet-S + MLP head 256-256-128 (Linear-ReLU-Linear, as MoCo v2), key network = EMA copy
// (m 0.99 here: the paper's 0.999 suits 200 epochs of ImageNet, not minutes of Fashion-MNIST),
// queue of 4096 negatives, InfoNCE T 0.2, shuffle-BN: keys in train mode, shuffled, BN over 8 groups.
// v3: + predictor 128-512-128, BN projector, symmetric in-batch loss scaled by 2T (T 0.2 here),
// momentum 0.99 -> 1 cosine. Views: WORKLOADS.md Q3's Fashion-MNIST recipe. Adam.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"MoCo v2 / v3 (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  int64_t queue = 4096, bn_groups = 8;
  float momentum = 0.99f, temperature = 0.2f;
  int threads = 2;
  bool v3 = false;
  std::string data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", s.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", s.epochs, "upper bound on epochs");
  app.add_option("--batch", s.batch, "images per step (two views each)");
  app.add_option("--lr", s.lr, "Adam learning rate");
  app.add_option("--momentum", momentum, "key-network EMA momentum (v3: at step 0, cosine to 1)");
  app.add_option("--temperature", temperature, "InfoNCE temperature");
  app.add_option("--queue", queue, "v2: number of negative keys");
  app.add_option("--bn-groups", bn_groups, "v2: shuffle-BN groups of the query and key batches (1 = whole batch)");
  app.add_flag("--v3", v3, "MoCo v3: predictor, symmetric loss, no queue");
  app.add_option("--seed", s.seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", s.workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", s.csv, "per-step CSV log");
  app.add_option("--baseline-cache", s.baseline_cache,
                 "file caching the random-init k-NN (seed and accuracy; also .linear and .geometry beside it)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const rng g(s.seed);
  if (v3) {
    moco_v3_method method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 512, .out_dim = 128}, g.fork(1)),
                          projection_mlp<>({.in_dim = 128, .hidden_dim = 512, .out_dim = 128}, g.fork(2)),
                          {.momentum_base = momentum}, moco_v3(temperature));
    return train_and_report(method, train, test, base, s, "MoCo v3");
  }
  moco_v2_method method(convnet_s<>(1, g),
                        projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128, .batch_norm = false}, g.fork(1)),
                        {.queue_size = queue, .momentum = momentum, .bn_groups = bn_groups, .seed = s.seed}, moco(temperature));
  return train_and_report(method, train, test, base, s, "MoCo v2");
}
