// MSN (ViT-T/4) on Fashion-MNIST.
//
// Trains ViT-T/4 with MSN's projector (Linear-BN-GELU x 2 -> Linear, hidden 2048, out 256) and 1024
// prototypes (methods/msn.hpp): anchor views with 15% of their patches dropped (a 28x28 crop and
// --focal 12x12 crops) must match the sharpened, Sinkhorn-balanced prototype assignment an EMA target
// network gives another unmasked 28x28 crop of the image, with ME-MAX keeping the prototypes in use;
// on the 60,000 train images without labels, for a wall-clock budget. Views: DINO's multi-crop policy
// (augment::dino_views: global crops (0.4, 1), focal crops (0.05, 0.4), colour jitter, blur,
// solarize). Recipe: AdamW lr 5e-4, weight decay 0.04 (none on biases, norms and the prototypes, as
// MSN), linear warm-up over 100 steps, gradient norm clipped at 3, batch 64, target EMA 0.996 ->
// 0.9992 over the planned steps (--epochs bounds the plan). docs/methods/msn.md has the runs behind
// these settings. Then reports k-NN (k = 20, T = 0.07) accuracy on the 10,000 test images, [CLS] and
// mean-pooled, for the student and the target encoder, beside the same ViT at its random
// initialisation (--baseline-cache FILE keeps those scores between runs), with --linear-probe the
// linear probes too.
// With --ranks W, W data-parallel thread ranks share each batch: every replica masks its images of
// the global batch's draw, the Sinkhorn-Knopp targets and ME-MAX use every rank's rows and the
// projector's BNs are synchronised (the official code's all-reduces and SyncBatchNorm).
//   msn_fashion_mnist --minutes 15 --epochs 1
//   msn_fashion_mnist --minutes 15 --epochs 1 --ranks 2
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"MSN (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  s.batch = 64;
  s.lr = 5e-4f;
  s.weight_decay = 0.04f;
  s.clip_grad = 3.0f;
  msn_options o;
  vit_fine_tune_settings ft;
  int focal = 10;
  int64_t hidden = 2048, out_dim = 256;
  add_vit_train_options(app, s);
  add_vit_fine_tune_options(app, ft);
  app.add_option("--mask-ratio", o.mask_ratio, "share of each anchor view's patches dropped");
  app.add_option("--focal", focal, "12x12 focal anchor views per image (besides the 28x28 anchor)");
  app.add_option("--prototypes", o.prototypes, "number of prototypes K");
  app.add_option("--hidden", hidden, "projector hidden width");
  app.add_option("--out-dim", out_dim, "projector output width (the prototypes' dimension)");
  app.add_option("--temperature", o.loss.temperature, "tau of the prototype softmax");
  app.add_option("--sharpen", o.loss.sharpen_temperature, "target sharpening temperature T");
  app.add_option("--me-max", o.loss.me_max_weight, "ME-MAX weight");
  app.add_flag("--no-sinkhorn", [&](int64_t) { o.loss.sinkhorn = false; }, "targets without Sinkhorn-Knopp");
  app.add_option("--momentum", o.momentum_base, "target EMA momentum at the first step");
  app.add_option("--momentum-final", o.momentum_final, "target EMA momentum at the last planned step");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);
  o.seed = s.seed;
  s.sync_bn = true;  // --ranks > 1: the projector's BNs over the global batch (MSN's SyncBatchNorm)

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  const int64_t D = vit_options::tiny4().dim;
  msn<> method(vit<>(vit_options::tiny4(), rng(s.seed)),
               projection_mlp<>(msn_options::projector(D, hidden, out_dim), rng(s.seed).fork(1)), o,
               rng(s.seed).fork(2));
  // no weight decay on biases, norms (BN, LN) and the prototypes (MSN's parameter groups)
  const param_group no_decay{"no_decay", [](const std::string& name, param_kind k) {
                               return k != param_kind::weight || name == "prototypes";
                             }, 1.0f, 0.0f};
  train_with_adamw(method, train, augment::dino_views(28, 12, focal, augment::fashion_mnist_normalize()), s,
                   {no_decay});
  const auto terms = method.last_terms();
  std::printf("last step: cross-entropy %.4f, ME-MAX %.4f (0: prototypes used evenly), anchor entropy %.4f\n",
              double(terms[0]), double(terms[1]), double(terms[2]));

  report_vit_scores("MSN student", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  report_vit_scores("MSN target encoder", evaluate_vit(method.teacher_encoder(), train, test, s.probe), base, s.probe);
  report_vit_alignment_uniformity("MSN student", method.encoder(), test, s.seed, s.baseline_cache);
  report_vit_fine_tune("MSN student", method.encoder(), train, test, ft, s.seed, s.baseline_cache);
  return 0;
}
