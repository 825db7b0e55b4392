// data2vec (ViT-T/4) on Fashion-MNIST.
//
// Trains ViT-T/4 (with a mask token) to regress, at block-masked patches (40% of the 7 x 7 grid,
// BEiT's block generator), the layer-normed average of the top half of the blocks of an EMA teacher
// that sees the whole image (methods/data2vec.hpp), on the 60,000 train images without labels, for a
// wall-clock budget. Recipe (fairseq's base_imagenet_d2v1 where it applies): RandomResizedCrop
// (0.3, 1) + flip, AdamW lr 1e-3 betas (0.9, 0.95) wd 0.05, linear warm-up over 100 steps, batch 256,
// smooth L1 beta 2 scaled by 1/sqrt(D), teacher momentum 0.999 -> 0.9998 over the planned steps
// (--epochs bounds the plan). docs/methods/data2vec.md has the runs behind these settings. Then
// reports k-NN (k = 20, T = 0.07) accuracy on the 10,000 test images, [CLS] and mean-pooled, for the
// student and the teacher, beside the same ViT at its random initialisation (--baseline-cache FILE
// keeps those scores between runs), with --linear-probe the linear probes too.
//   data2vec_fashion_mnist --minutes 15 --epochs 4
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"data2vec (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  data2vec_options o;
  vit_fine_tune_settings ft;
  bool no_head = false;
  add_vit_train_options(app, s);
  add_vit_fine_tune_options(app, ft);
  app.add_option("--mask-ratio", o.mask_ratio, "share of the patches hidden (in blocks)");
  app.add_option("--top-k", o.top_k, "teacher blocks averaged into the targets (-1: half the depth)");
  app.add_option("--beta", o.loss.beta, "smooth-L1 threshold (0: squared error)");
  app.add_option("--momentum", o.momentum_base, "teacher EMA momentum at the first step");
  app.add_option("--momentum-final", o.momentum_final, "teacher EMA momentum at the last planned step");
  app.add_flag("--no-head", no_head, "regress the encoder output directly (fairseq's vision model)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);
  o.seed = s.seed;
  o.regression_head = !no_head;

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  // Baseline: the same architecture at its random initialisation (the zero mask token changes nothing).
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  vit_options vo = vit_options::tiny4();
  vo.mask_token = true;
  data2vec<> method(vit<>(vo, rng(s.seed)), o, rng(s.seed).fork(1));
  train_with_adamw(method, train, augment::mae_views(28, augment::fashion_mnist_normalize(), 0.3f), s);

  report_vit_scores("data2vec student", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  report_vit_scores("data2vec teacher", evaluate_vit(method.teacher(), train, test, s.probe), base, s.probe);
  report_vit_alignment_uniformity("data2vec student", method.encoder(), test, s.seed, s.baseline_cache);
  report_vit_fine_tune("data2vec student", method.encoder(), train, test, ft, s.seed, s.baseline_cache);
  return 0;
}
