// SimCLR on Fashion-MNIST (the README's main job).
//
// Trains ConvNet-S + a 256-256-128 projection head with NT-Xent (T = 0.5) on the 60,000
// train images without labels, for a wall-clock budget, with the Q3 recipe of
// shared/WORKLOADS.md (affine crop (0.3, 1), flip, brightness/contrast jitter; Adam 1e-3),
// then reports k-NN (k = 20, T = 0.07) accuracy on the 10,000 test images beside a random-init
// encoder's (BN recalibrated), and optionally the linear-probe accuracy.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

struct scores {
  double knn = 0, linear = -1;
};

static scores evaluate(const convnet_s<>& enc, const data::in_memory_dataset& train, const data::in_memory_dataset& test,
                       bool probe) {
  const auto norm = eval::fashion_mnist_normalization();
  const tensor<cpu> ftr = eval::extract_features(enc, train.images(), norm);
  const tensor<cpu> fte = eval::extract_features(enc, test.images(), norm);
  scores s;
  s.knn = eval::knn_classify(ftr, train.labels(), fte, test.labels()).accuracy;
  if (probe) s.linear = eval::linear_probe(ftr, train.labels(), fte, test.labels()).test_accuracy;
  return s;
}

int main(int argc, char** argv) {
  CLI::App app{"SimCLR (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  s.minutes = 5;
  float temperature = 0.5f;
  int threads = 2;
  bool probe = false;
  std::string data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", s.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", s.epochs, "upper bound on epochs");
  app.add_option("--batch", s.batch, "images per step (two views each)");
  app.add_option("--lr", s.lr, "Adam learning rate");
  app.add_option("--temperature", temperature, "NT-Xent temperature");
  app.add_option("--seed", s.seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", s.workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", s.csv, "per-step CSV log");
  app.add_option("--checkpoint", s.checkpoint, "checkpoint file (safetensors), written at the end");
  app.add_flag("--linear-probe", probe, "also fit a linear probe (L-BFGS, a few minutes)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  std::printf("Fashion-MNIST: %lld train, %lld test images\n", (long long)train.size(), (long long)test.size());

  // Baseline: the same architecture at its random initialisation (BN recalibrated on train).
  convnet_s<> random_enc(1, rng(s.seed));
  eval::recalibrate_batch_norm(random_enc, train.images(), eval::fashion_mnist_normalization());
  const scores base = evaluate(random_enc, train, test, probe);
  std::printf("random-init ConvNet-S: k-NN %.2f%%\n", 100 * base.knn);

  simclr method(convnet_s<>(1, rng(s.seed)), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(s.seed).fork(1)),
                nt_xent(temperature));
  train_with_adam(method, train, augment::fashion_mnist_simclr(28), s);

  const scores trained = evaluate(method.encoder(), train, test, probe);
  std::printf("SimCLR ConvNet-S:      k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", 100 * trained.knn,
              100 * base.knn, 100 * (trained.knn - base.knn));
  if (probe) std::printf("linear probe: SimCLR %.2f%%, random init %.2f%%\n", 100 * trained.linear, 100 * base.linear);
  return 0;
}
