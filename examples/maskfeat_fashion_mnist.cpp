// MaskFeat (ViT-T/4) on Fashion-MNIST.
//
// Trains ViT-T/4 (shared/WORKLOADS.md) with masked feature prediction (docs/methods/maskfeat.md):
// 40% of the 49 patches are replaced by a learned mask token and a linear head regresses their
// HoG vectors (4x4 cells, 9 orientation bins) with an MSE on the masked patches, on the 60,000
// train images without labels, for a wall-clock budget, with MAE's Q4 recipe: RandomResizedCrop
// (0.2, 1) + flip, AdamW lr 1e-3 betas (0.9, 0.95) wd 0.05, linear warm-up over 100 steps then
// constant, batch 256. Then reports k-NN (k = 20, T = 0.07) accuracy on the 10,000 test images for
// the [CLS] token and for the mean of the patch tokens (no mask, after the final norm), beside the
// same ViT at its random initialisation, with --linear-probe the linear-probe accuracies too, and
// the alignment / uniformity of both features on two SimCLR (Q3) views of every test image.
// With --fine-tune-epochs E it then fine-tunes the trained and the random-init ViT end to end
// (layer-wise lr decay 0.75, drop path 0.1, label smoothing 0.1, mean-pooled head) on a class-balanced
// --fine-tune-labels fraction of the train labels and prints both test accuracies, e.g.
//   maskfeat_fashion_mnist --minutes 15 --cosine --epochs 7 --fine-tune-epochs 30 --fine-tune-labels 0.1
//   maskfeat_fashion_mnist --minutes 15 --linear-probe --baseline-cache vit_baseline.txt
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"MaskFeat (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  float mask_ratio = 0.4f;
  vit_fine_tune_settings ft;
  add_vit_train_options(app, s);
  add_vit_fine_tune_options(app, ft);
  app.add_option("--mask-ratio", mask_ratio, "fraction of patches replaced by the mask token");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  // Baseline: the same architecture at its random initialisation.
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  // One greyscale channel: HoG targets of 9 values per 4x4 patch.
  maskfeat<> method(vit<>(vit_options::tiny4(), rng(s.seed)), /*channels=*/1,
                    {.mask_ratio = mask_ratio, .seed = s.seed}, rng(s.seed).fork(1));
  train_with_adamw(method, train, augment::mae_views(28, augment::fashion_mnist_normalize()), s);

  report_vit_scores("MaskFeat ViT-T/4", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  report_vit_alignment_uniformity("MaskFeat ViT-T/4", method.encoder(), test, s.seed, s.baseline_cache);
  report_vit_fine_tune("MaskFeat ViT-T/4", method.encoder(), train, test, ft, s.seed, s.baseline_cache);
  return 0;
}
