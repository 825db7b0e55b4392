// SwAV on Fashion-MNIST: online clustering with swapped prediction and multi-crop.
//
// ConvNet-S + projection head 256-512-128 (BN + ReLU) + K prototypes (unit vectors), trained without
// labels on SwAV's multi-crop (augment::swav_views: 2 crops of 28 px, scale (split, 1), and n crops of
// 12 px, scale (0.05, split); colour distortion of strength 1 (brightness / contrast on grey images),
// blur p 0.5, flip; Fashion-MNIST normalisation). Codes by Sinkhorn-Knopp (epsilon 0.05, 3
// iterations) on the two large crops, predicted by every other crop at tau 0.1; the prototypes are
// frozen for the first --freeze-steps steps. An optional queue (--queue) adds earlier embeddings to
// the Sinkhorn-Knopp batch (for many prototypes next to the batch). Adam. Reports k-NN (k = 20,
// T = 0.07), optionally a linear probe, and alignment / uniformity beside the random-init encoder's.
//
//   swav_fashion_mnist --minutes 5 --linear-probe
//   swav_fashion_mnist --prototypes 3000 --queue 3840 --queue-start 500   (the paper's K, with its queue)
//   swav_fashion_mnist --ranks 2 --sync-bn   (data-parallel: the codes' Sinkhorn-Knopp over both ranks' rows)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/dist.hpp>
#include <ssl/ssl.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"SwAV (ConvNet-S, multi-crop) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  train_settings s;
  int64_t prototypes = 300, freeze_steps = 100, queue = 0, queue_start = 0;
  int small_crops = 4;
  float split_scale = 0.3f, temperature = 0.1f, epsilon = 0.05f;
  add_common_options(app, s, "images per step (2 large + --small-crops small crops each)");
  add_ranks_option(app, s);
  app.add_option("--prototypes", prototypes, "number of prototypes K (the paper: 3000 on ImageNet)");
  app.add_option("--small-crops", small_crops, "12 px crops per image besides the two 28 px crops (the paper: 6)");
  app.add_option("--split-scale", split_scale,
                 "crop area fraction between small (0.05, s) and large (s, 1) crops (the paper: 0.14 at 224 / 96 px)");
  app.add_option("--temperature", temperature, "softmax temperature of the predictions");
  app.add_option("--epsilon", epsilon, "Sinkhorn-Knopp's entropic temperature");
  app.add_option("--freeze-steps", freeze_steps, "steps with the prototypes frozen (the paper: 313)");
  app.add_option("--queue", queue, "queue rows per large crop (0: none; the paper: 3840 for small batches)");
  app.add_option("--queue-start", queue_start, "step from which the queue fills (the paper: epoch 15)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);

  const rng g(s.seed);
  swav_method<convnet_s<>> method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 512, .out_dim = 128}, g.fork(1)),
                                  swav_prototypes<>(128, prototypes, g.fork(2)),
                                  {.temperature = temperature,
                                   .epsilon = epsilon,
                                   .freeze_prototypes_steps = freeze_steps,
                                   .queue_length = queue,
                                   .queue_start_step = queue_start});
  const auto views =
      augment::swav_views(28, 12, small_crops, augment::fashion_mnist_normalize(), /*n_large=*/2, split_scale);
  train_with_adam(method, train, views, s);
  report_encoder("SwAV", method.encoder(), train, test, base, s);
  return 0;
}
