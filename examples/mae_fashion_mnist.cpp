// MAE (ViT-T/4) on Fashion-MNIST.
//
// Trains ViT-T/4 + the W2 decoder (shared/WORKLOADS.md) with masked reconstruction (mask 0.75,
// norm_pix loss) on the 60,000 train images without labels, for a wall-clock budget, with the Q4
// recipe: RandomResizedCrop (0.2, 1) + flip, AdamW lr 1e-3 betas (0.9, 0.95) wd 0.05, linear warm-up
// over 100 steps then constant, batch 256. Then reports k-NN (k = 20, T = 0.07) accuracy on the
// 10,000 test images for the [CLS] token and for the mean of the patch tokens (all 49 patches
// visible, after the final norm), beside the same ViT at its random initialisation.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

using namespace ssl;

struct scores {
  double knn_cls = 0, knn_mean = 0, linear_cls = -1, linear_mean = -1;
};

/// [CLS] and mean-pooled features of all images from one token pass per batch: (N, D) each.
static std::pair<tensor<cpu>, tensor<cpu>> features(const vit<>& enc, const tensor<cpu>& images, int64_t batch = 500) {
  const auto norm = eval::fashion_mnist_normalization();
  const int64_t N = images.dim(0), D = enc.feature_dim();
  tensor<cpu> cls(shape{N, D}), mean(shape{N, D});
  for (int64_t b = 0; b < N; b += batch) {
    const int64_t e = std::min(N, b + batch);
    const tensor<cpu> tokens = enc.infer_tokens(eval::normalized_slice(images, b, e, norm));
    const tensor<cpu> c = vit<>::pool_tokens(tokens, vit_pool::cls), m = vit<>::pool_tokens(tokens, vit_pool::mean);
    std::copy_n(c.data(), c.numel(), cls.data() + b * D);
    std::copy_n(m.data(), m.numel(), mean.data() + b * D);
  }
  return {std::move(cls), std::move(mean)};
}

static scores evaluate(const vit<>& enc, const data::in_memory_dataset& train, const data::in_memory_dataset& test,
                       bool probe) {
  const auto [tr_cls, tr_mean] = features(enc, train.images());
  const auto [te_cls, te_mean] = features(enc, test.images());
  scores s;
  s.knn_cls = eval::knn_classify(tr_cls, train.labels(), te_cls, test.labels()).accuracy;
  s.knn_mean = eval::knn_classify(tr_mean, train.labels(), te_mean, test.labels()).accuracy;
  if (probe) {
    s.linear_cls = eval::linear_probe(tr_cls, train.labels(), te_cls, test.labels()).test_accuracy;
    s.linear_mean = eval::linear_probe(tr_mean, train.labels(), te_mean, test.labels()).test_accuracy;
  }
  return s;
}

int main(int argc, char** argv) {
  CLI::App app{"MAE (ViT-T/4) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  double minutes = 5;
  int64_t epochs = 100, batch = 256, warmup = 100;
  float lr = 1e-3f, weight_decay = 0.05f, mask_ratio = 0.75f;
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  bool probe = false, no_norm_pix = false;
  std::string csv, checkpoint, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", epochs, "upper bound on epochs");
  app.add_option("--batch", batch, "images per step");
  app.add_option("--lr", lr, "AdamW learning rate after warm-up");
  app.add_option("--warmup", warmup, "linear warm-up steps");
  app.add_option("--weight-decay", weight_decay, "AdamW weight decay (all parameters)");
  app.add_option("--mask-ratio", mask_ratio, "fraction of patches hidden from the encoder");
  app.add_flag("--no-norm-pix", no_norm_pix, "reconstruct raw (normalised-image) pixels instead of per-patch normalised ones");
  app.add_option("--seed", seed, "seed of weights, data order, augmentations and masks");
  app.add_option("--workers", workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", csv, "per-step CSV log");
  app.add_option("--checkpoint", checkpoint, "checkpoint file (safetensors), written at the end");
  app.add_flag("--linear-probe", probe, "also fit linear probes (L-BFGS, a few minutes each)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  std::printf("Fashion-MNIST: %lld train, %lld test images\n", (long long)train.size(), (long long)test.size());

  // Baseline: the same architecture at its random initialisation.
  const scores base = evaluate(vit<>(vit_options::tiny4(), rng(seed)), train, test, probe);
  std::printf("random-init ViT-T/4:  k-NN [CLS] %.2f%%, mean-pooled %.2f%%\n", 100 * base.knn_cls, 100 * base.knn_mean);

  mae<> method(vit<>(vit_options::tiny4(), rng(seed)), mae_decoder<>({}, rng(seed).fork(1)),
               {.mask_ratio = mask_ratio, .norm_pix_loss = !no_norm_pix, .seed = seed});
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = lr, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = weight_decay});
  data::loader loader(train, augment::mae_views(28, augment::fashion_mnist_normalize()),
                      {.batch_size = batch, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed});
  trainer_options to;
  to.epochs = epochs;
  to.budget_seconds = minutes * 60;
  to.lr = linear_warmup(0.0f, lr, std::min(warmup, epochs * loader.steps_per_epoch()));
  to.csv_log = csv;
  to.checkpoint_path = checkpoint;
  const train_summary sum = ssl::train(method, opt, loader, to);
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f\n", (long long)sum.steps,
              double(sum.steps) / double(loader.steps_per_epoch()), sum.seconds, sum.images_per_second,
              sum.mean_loss_last_100);

  const scores s = evaluate(method.encoder(), train, test, probe);
  std::printf("MAE ViT-T/4 [CLS]:         k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", 100 * s.knn_cls,
              100 * base.knn_cls, 100 * (s.knn_cls - base.knn_cls));
  std::printf("MAE ViT-T/4 mean-pooled:   k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", 100 * s.knn_mean,
              100 * base.knn_mean, 100 * (s.knn_mean - base.knn_mean));
  if (probe)
    std::printf("linear probe: [CLS] %.2f%% (random %.2f%%), mean-pooled %.2f%% (random %.2f%%)\n", 100 * s.linear_cls,
                100 * base.linear_cls, 100 * s.linear_mean, 100 * base.linear_mean);
  return 0;
}
