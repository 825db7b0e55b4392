// I-JEPA (ViT-T/4) on Fashion-MNIST.
//
// Trains ViT-T/4 (the context encoder) + a narrow predictor (96 wide, 4 blocks) to predict the
// features an EMA target encoder gives 4 target blocks of each image, from one context block of the
// same image (pretext/multiblock_mask.hpp: the official block scales on the 7 x 7 patch grid, 3 target
// blocks instead of 4 so the context keeps the official ~25% of the patches: with 4 blocks of ~9
// patches a 49-patch image keeps ~15%), on the 60,000 train images without labels, for a wall-clock
// budget. Recipe: RandomResizedCrop (0.3, 1) (+ flip), AdamW lr 5e-4 betas (0.9, 0.95) wd 0.04, linear
// warm-up over 100 steps, batch 256, target momentum 0.996 -> 1 over the planned steps (--epochs
// bounds the plan). docs/methods/ijepa.md has the runs behind these settings. Then reports k-NN (k = 20,
// T = 0.07) accuracy on the 10,000 test images for the target encoder (what I-JEPA evaluates) and the
// context encoder, [CLS] and mean-pooled, beside the same ViT at its random initialisation
// (--baseline-cache FILE keeps those scores between runs), with --linear-probe the linear probes too.
//   ijepa_fashion_mnist --minutes 15 --epochs 4
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"I-JEPA (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  s.weight_decay = 0.04f;
  s.lr = 5e-4f;
  ijepa_options o;
  o.masks.targets = 3;
  ijepa_predictor_options p;
  vit_fine_tune_settings ft;
  add_vit_train_options(app, s);
  add_vit_fine_tune_options(app, ft);
  app.add_option("--targets", o.masks.targets, "target blocks per image");
  app.add_option("--min-keep", o.masks.min_keep, "a context keeps more patches than this");
  app.add_option("--target-scale-min", o.masks.target_scale_min, "smallest target block, fraction of the image");
  app.add_option("--target-scale-max", o.masks.target_scale_max, "largest target block, fraction of the image");
  app.add_option("--momentum", o.momentum_base, "target EMA momentum at the first step (rises linearly to 1)");
  app.add_option("--pred-dim", p.dim, "predictor width");
  app.add_option("--pred-depth", p.depth, "predictor blocks");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);
  o.seed = s.seed;

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  // Baseline: the same architecture at its random initialisation.
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  ijepa<> method(vit<>(vit_options::tiny4(), rng(s.seed)), ijepa_predictor<>(p, rng(s.seed).fork(1)), o);
  train_with_adamw(method, train, augment::mae_views(28, augment::fashion_mnist_normalize(), 0.3f), s);

  report_vit_scores("I-JEPA target", evaluate_vit(method.target_encoder(), train, test, s.probe), base, s.probe);
  report_vit_scores("I-JEPA context", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  report_vit_alignment_uniformity("I-JEPA target", method.target_encoder(), test, s.seed, s.baseline_cache);
  report_vit_fine_tune("I-JEPA target", method.target_encoder(), train, test, ft, s.seed, s.baseline_cache);
  return 0;
}
