// MoCo v3 with a ViT (ViT-T/4) on Fashion-MNIST: the setting of the MoCo v3 paper (Chen, Xie & He
// 2021, "An Empirical Study of Training Self-Supervised Vision Transformers").
//
// moco_v3_method<vit<>, projection_mlp<>, prediction_mlp<>> (docs/methods/moco.md): two views of
// each image (WORKLOADS.md Q3 augmentation), queries pred(proj(enc(v))) against the momentum
// network's keys proj_k(enc_k(v')) of the other view, InfoNCE over the batch at T = 0.2 scaled by 2T,
// symmetric. The official ViT recipe scaled to ViT-T/4: projector 3 layers (hidden 1024 here, 4096
// there) -> 256 with BN after every layer (the last without ReLU), predictor 2 layers -> 256 (the
// same), key momentum 0.99 rising to 1 along a cosine over the planned steps (--epochs bounds the
// plan), AdamW wd 0.1,
// and the patch projection frozen at its random init ("random patch projection", the paper's fix
// for the training instability of ViTs; --train-patch-embed turns it off). lr 5e-4 after 100 warm-up
// steps (the official 1.5e-4 B / 256 is for 300 ImageNet epochs), batch 256. Then reports k-NN
// (k = 20, T = 0.07) accuracy on the 10,000 test images for [CLS] and the mean-pooled patch tokens,
// beside the same ViT at its random initialisation (--baseline-cache FILE keeps those), with
// --linear-probe the linear probes too, e.g.
//   moco_v3_vit_fashion_mnist --minutes 15 --epochs 2 --linear-probe --baseline-cache vit_baseline.txt
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"MoCo v3 (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  s.lr = 5e-4f;
  s.weight_decay = 0.1f;
  vit_fine_tune_settings ft;
  float temperature = 0.2f, momentum = 0.99f;
  int64_t hidden = 1024, out_dim = 256;
  bool train_patch_embed = false;
  add_vit_train_options(app, s);
  add_vit_fine_tune_options(app, ft);
  app.add_option("--temperature", temperature, "InfoNCE temperature (MoCo v3 ViT: 0.2)");
  app.add_option("--momentum", momentum, "key-network momentum at the first step (cosine to 1)");
  app.add_option("--hidden", hidden, "hidden width of the projector and the predictor");
  app.add_option("--out-dim", out_dim, "output width of the projector and the predictor");
  app.add_flag("--train-patch-embed", train_patch_embed,
               "train the patch projection too (the paper freezes it at its random init)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  rng g = rng(s.seed).fork(1);
  const int64_t D = vit_options::tiny4().dim;
  projection_mlp<> projector({.in_dim = D, .hidden_dim = hidden, .out_dim = out_dim, .layers = 3,
                              .last_batch_norm = true}, g.fork(0));
  prediction_mlp<> predictor({.in_dim = out_dim, .hidden_dim = hidden, .out_dim = out_dim, .layers = 2,
                              .last_batch_norm = true}, g.fork(1));
  moco_v3_method method(vit<>(vit_options::tiny4(), rng(s.seed)), std::move(projector), std::move(predictor),
                        {.momentum_base = momentum}, moco_v3(temperature));
  std::vector<param_group> groups;
  if (!train_patch_embed)  // random patch projection: no update, no weight decay (the key copy stays equal)
    groups.push_back({"frozen_patch_embed",
                      [](const std::string& name, param_kind) { return name.starts_with("encoder.patch_embed."); },
                      0.0f, 0.0f});
  train_with_adamw(method, train, augment::fashion_mnist_simclr(28), s, groups);

  report_vit_scores("MoCo v3 ViT-T/4", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  report_vit_alignment_uniformity("MoCo v3 ViT-T/4", method.encoder(), test, s.seed, s.baseline_cache);
  report_vit_fine_tune("MoCo v3 ViT-T/4", method.encoder(), train, test, ft, s.seed, s.baseline_cache);
  return 0;
}
