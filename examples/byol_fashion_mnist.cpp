// BYOL (or SimSiam with --simsiam) on Fashion-MNIST.
//
// ConvNet-S + projector 256-512-128 + predictor 128-512-128 (BN + ReLU hidden layers); the target
// is an EMA copy of encoder + projector (tau 0.99 -> 1 cosine here; the paper's 0.996 is for
// hundreds of epochs). Views: the Fashion-MNIST recipe of WORKLOADS.md Q3 (affine crop (0.3, 1),
// flip, brightness/contrast). Adam. Reports k-NN (k = 20, T = 0.07) on the test set beside the
// random-init encoder's (BN recalibrated).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"BYOL / SimSiam (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  float tau = 0.99f;
  bool simsiam = false;
  add_common_options(app, s, "images per step (two views each)");
  app.add_option("--tau", tau, "target EMA momentum at step 0 (cosine to 1)");
  app.add_flag("--simsiam", simsiam, "SimSiam: no target network, stop-gradient on the online network");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const rng g(s.seed);
  auto projector = projection_mlp<>({.in_dim = 256, .hidden_dim = 512, .out_dim = 128}, g.fork(1));
  auto predictor = projection_mlp<>({.in_dim = 128, .hidden_dim = 512, .out_dim = 128}, g.fork(2));
  if (simsiam) {
    simsiam_method<convnet_s<>, projection_mlp<>> method(convnet_s<>(1, g), projector, predictor);
    return train_and_report(method, train, test, base, s, "SimSiam");
  }
  byol_method method(convnet_s<>(1, g), projector, predictor, {.tau_base = tau});
  return train_and_report(method, train, test, base, s, "BYOL");
}
