// Triplet metric learning on Fashion-MNIST without labels: two augmented views of each image share
// a pseudo-label, semi-hard mining picks the other view as the positive and the closest other image
// farther than it as the negative (cosine distance, margin 0.3; --strategy batch_hard | batch_all). ConvNet-S + embedding head 256-256-128.
// Views: WORKLOADS.md Q3's Fashion-MNIST recipe. Adam. Reports k-NN beside the random-init encoder.
// --ranks W: W data-parallel thread ranks share each batch and mine over the global batch (as one
// process); --sync-bn adds BatchNorm statistics of the global batch.
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
  std::string strategy = "semi_hard";
  add_common_options(app, s, "images per step (two views each)");
  app.add_option("--margin", margin, "triplet margin (cosine distance)");
  app.add_option("--strategy", strategy, "mining: semi_hard | batch_all | batch_hard")
      ->check(CLI::IsMember({"semi_hard", "batch_all", "batch_hard"}));
  add_ranks_option(app, s);
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const triplet_strategy mining = strategy == "batch_all"   ? triplet_strategy::batch_all
                                  : strategy == "semi_hard" ? triplet_strategy::semi_hard
                                                            : triplet_strategy::batch_hard;
  const rng g(s.seed);
  triplet_method method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, g.fork(1)),
                        triplet_mining(mining, margin, triplet_distance::cosine));
  return train_and_report(method, train, test, base, s, "Triplet");
}
