// SimMIM (ViT-T/4) on Fashion-MNIST.
//
// Trains ViT-T/4 (with a mask token) with SimMIM (methods/simmim.hpp, docs/methods/simmim.md): 60% of
// the 4 x 4 mask units of 2 x 2 patches (8 x 8 px, cut to 4 px at the right and bottom edges) are
// replaced by the mask token, the encoder sees every patch, and a linear head regresses the pixels of
// the masked patches with an L1 loss, on the 60,000 train images without labels, for a wall-clock
// budget. Recipe: SimMIM's RandomResizedCrop (0.67, 1) + flip; the optimiser settings the other
// ViT-T/4 examples share (MAE's Q4 recipe: AdamW lr 1e-3 betas (0.9, 0.95) wd 0.05, linear warm-up
// over 100 steps then constant, batch 256) so that the masked-modeling rows of docs/results.md
// compare like with like. Then reports k-NN (k = 20, T = 0.07) accuracy on the 10,000 test images,
// [CLS] and mean-pooled, beside the same ViT at its random initialisation (--baseline-cache FILE keeps
// those scores between runs), with --linear-probe the linear probes too, the alignment / uniformity
// of both features, and with --fine-tune-epochs E an end-to-end fine-tune, e.g.
//   simmim_fashion_mnist --minutes 15 --linear-probe --baseline-cache vit_baseline.txt
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"SimMIM (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  simmim_options o;
  vit_fine_tune_settings ft;
  float crop_min = 0.67f;
  add_vit_train_options(app, s);
  add_vit_fine_tune_options(app, ft);
  app.add_option("--mask-ratio", o.mask_ratio, "share of the mask units hidden (rounded up)");
  app.add_option("--mask-unit", o.mask_unit, "mask unit side in 4 px patches (SimMIM's mask patch / patch)");
  app.add_flag("--norm-pix", o.norm_pix, "regress per-patch normalised pixels (MAE's norm_pix_loss)");
  app.add_option("--crop-min", crop_min, "smallest RandomResizedCrop scale");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);
  o.seed = s.seed;

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  // Baseline: the same architecture at its random initialisation (the mask token changes nothing
  // without a mask: the ViT's weights are drawn as without one).
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  vit_options vo = vit_options::tiny4();
  vo.mask_token = true;
  simmim<> method(vit<>(vo, rng(s.seed)), /*channels=*/1, o, rng(s.seed).fork(1));
  train_with_adamw(method, train, augment::mae_views(28, augment::fashion_mnist_normalize(), crop_min), s);

  report_vit_scores("SimMIM ViT-T/4", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  report_vit_alignment_uniformity("SimMIM ViT-T/4", method.encoder(), test, s.seed, s.baseline_cache);
  report_vit_fine_tune("SimMIM ViT-T/4", method.encoder(), train, test, ft, s.seed, s.baseline_cache);
  return 0;
}
