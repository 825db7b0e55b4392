// DenseCL with a ViT (ViT-T/4) on Fashion-MNIST (Wang et al. 2021, "Dense Contrastive Learning for
// Self-Supervised Visual Pre-Training").
//
// densecl_method<vit<>, projection_mlp<>> (docs/methods/densecl.md): MoCo v2 plus a dense term. The
// query view's 7 x 7 patch tokens (the 49 locations DenseCL's ResNet-50 has at 224) each go through
// a dense head (the official 1x1-conv neck: D -> hidden -> ReLU -> out), and each is contrasted with
// the key location of the other view whose backbone token it resembles most (largest cosine) against
// a second queue of mean dense keys; the global term is MoCo v2's InfoNCE on the mean-pooled tokens
// (the official avgpool). L = (1 - lambda) L_global + lambda L_dense, T 0.2, lambda 0.5.
// Scaled to a short run on 60,000 images: queue 4096 (official 65536, more than the data set), key
// momentum 0.99 (official 0.999), AdamW lr 5e-4 wd 0.1 after 50 warm-up steps (the official SGD
// recipe is for ResNets; the ViT recipe of MoCo v3), heads 2048 -> 128 (official), batch 128;
// augmentation WORKLOADS.md Q3 (fashion_mnist_simclr). Then reports k-NN (k = 20, T = 0.07) accuracy
// on the 10,000 test images for [CLS] and mean-pooled tokens, beside the same ViT at its random
// initialisation (--baseline-cache FILE keeps those), e.g.
//   densecl_fashion_mnist --max-steps 300 --epochs 1 --minutes 60 --batch 128 --threads 2
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/losses/densecl.hpp>
#include <ssl/methods/densecl.hpp>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;
using namespace ssl_example;

int main(int argc, char** argv) {
  CLI::App app{"DenseCL (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  vit_train_settings s;
  s.lr = 5e-4f;
  s.weight_decay = 0.1f;
  s.warmup = 50;
  s.batch = 128;
  s.epochs = 1;
  int64_t max_steps = 0, hidden = 2048, out_dim = 128;
  densecl_options o{.queue_size = 4096, .momentum = 0.99f, .temperature = 0.2f, .loss_lambda = 0.5f};
  bool freeze_patch_embed = false;
  add_vit_train_options(app, s);
  app.add_option("--max-steps", max_steps, "stop after this many steps (0: the epochs and minutes decide)");
  app.add_option("--queue", o.queue_size, "keys in each queue (official 65536)");
  app.add_option("--momentum", o.momentum, "key-network EMA momentum (official 0.999)");
  app.add_option("--temperature", o.temperature, "InfoNCE temperature of both terms (official 0.2)");
  app.add_option("--lambda", o.loss_lambda, "weight of the dense term (official 0.5; 0: MoCo v2)");
  app.add_option("--hidden", hidden, "hidden width of both heads (official 2048)");
  app.add_option("--out-dim", out_dim, "output width of both heads (official 128)");
  app.add_flag("--freeze-patch-embed", freeze_patch_embed,
               "keep the patch projection at its random init (MoCo v3's fix for ViT instability)");
  CLI11_PARSE(app, argc, argv);
  check<value_error>(s.ranks == 1, "densecl_fashion_mnist: --ranks must be 1 (DenseCL offers no data-parallel hooks)");
  set_num_threads(s.threads);
  o.seed = s.seed;

  const auto [train, test] = load_fashion_mnist_splits(s.data_dir);
  const vit_scores base = report_random_init_vit(train, test, s.seed, s.probe, s.baseline_cache);

  // the same random init as the baseline (vit_options::tiny4(), rng(seed)); mean pooling = the official avgpool
  vit_options vo = vit_options::tiny4();
  vo.pool = vit_pool::mean;
  const int64_t D = vo.dim;
  rng g = rng(s.seed).fork(1);
  const projection_mlp_options neck{.in_dim = D, .hidden_dim = hidden, .out_dim = out_dim, .layers = 2,
                                    .batch_norm = false};
  densecl_method method(vit<>(vo, rng(s.seed)), projection_mlp<>(neck, g.fork(0)), projection_mlp<>(neck, g.fork(1)), o);

  std::vector<param_group> groups;
  if (freeze_patch_embed)
    groups.push_back({"frozen_patch_embed",
                      [](const std::string& name, param_kind) { return name.starts_with("encoder.patch_embed."); },
                      0.0f, 0.0f});
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = s.lr, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = s.weight_decay}, groups);
  auto loader = replica_loader(train, augment::fashion_mnist_simclr(28), s.batch, s.workers, s.seed, 0, 1);
  trainer_options to;
  to.epochs = s.epochs;
  to.budget_seconds = s.minutes * 60;
  to.max_steps = max_steps;
  to.clip_grad_norm = s.clip_grad;
  int64_t planned = s.epochs * loader.steps_per_epoch();
  if (max_steps > 0) planned = std::min(planned, max_steps);
  to.lr = linear_warmup(0.0f, s.lr, std::min(s.warmup, planned));
  to.csv_log = s.csv;
  to.checkpoint_path = s.checkpoint;
  to.resume_from = s.resume;
  const train_summary sum = ssl::train(method, opt, loader, to);
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f (global %.4f, dense %.4f)\n",
              (long long)sum.steps, double(sum.steps) / double(loader.steps_per_epoch()), sum.seconds,
              sum.images_per_second, sum.mean_loss_last_100, method.last_global_loss(), method.last_dense_loss());

  report_vit_scores("DenseCL ViT-T/4", evaluate_vit(method.encoder(), train, test, s.probe), base, s.probe);
  return 0;
}
