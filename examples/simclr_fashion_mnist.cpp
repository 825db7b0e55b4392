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

int main(int argc, char** argv) {
  CLI::App app{"SimCLR (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  s.minutes = 5;
  float temperature = 0.5f;
  add_common_options(app, s, "images per step (two views each)");
  app.add_option("--temperature", temperature, "NT-Xent temperature");
  app.add_option("--checkpoint", s.checkpoint, "checkpoint file (safetensors), written at the end");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  std::printf("Fashion-MNIST: %lld train, %lld test images\n", (long long)train.size(), (long long)test.size());

  // Baseline: the same architecture at its random initialisation (BN recalibrated on train).
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  simclr method(convnet_s<>(1, rng(s.seed)), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(s.seed).fork(1)),
                nt_xent(temperature));
  return train_and_report(method, train, test, base, s, "SimCLR");
}
