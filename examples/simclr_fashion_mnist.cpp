// SimCLR on Fashion-MNIST (the README's main job).
//
// Trains ConvNet-S + a 256-256-128 projection head with NT-Xent (T = 0.5) on the 60,000
// train images without labels, for a wall-clock budget, with the Q3 recipe of
// shared/WORKLOADS.md (affine crop (0.3, 1), flip, brightness/contrast jitter; Adam 1e-3),
// then reports k-NN (k = 20, T = 0.07) accuracy on the 10,000 test images beside a random-init
// encoder's (BN recalibrated), and optionally the linear-probe accuracy.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

using namespace ssl;

struct scores {
  double knn = 0, linear = -1;
};

static scores evaluate(const convnet_s<>& enc, const data::in_memory_dataset& train, const data::in_memory_dataset& test,
                       bool probe) {
  const auto norm = eval::fashion_mnist_normalization();
  const tensor<cpu> ftr = eval::extract_features(enc, train.images(), norm);
  const tensor<cpu> fte = eval::extract_features(enc, test.images(), norm);
  scores s;
  s.knn = eval::knn_classify(ftr, train.labels(), fte, test.labels()).accuracy;
  if (probe) s.linear = eval::linear_probe(ftr, train.labels(), fte, test.labels()).test_accuracy;
  return s;
}

int main(int argc, char** argv) {
  CLI::App app{"SimCLR (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  double minutes = 5;
  int64_t epochs = 100, batch = 256;
  float lr = 1e-3f, temperature = 0.5f;
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  bool probe = false;
  std::string csv, checkpoint, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", epochs, "upper bound on epochs");
  app.add_option("--batch", batch, "images per step (two views each)");
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--temperature", temperature, "NT-Xent temperature");
  app.add_option("--seed", seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", csv, "per-step CSV log");
  app.add_option("--checkpoint", checkpoint, "checkpoint file (safetensors), written at the end");
  app.add_flag("--linear-probe", probe, "also fit a linear probe (L-BFGS, a few minutes)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  std::printf("Fashion-MNIST: %lld train, %lld test images\n", (long long)train.size(), (long long)test.size());

  // Baseline: the same architecture at its random initialisation (BN recalibrated on train).
  convnet_s<> random_enc(1, rng(seed));
  eval::recalibrate_batch_norm(random_enc, train.images(), eval::fashion_mnist_normalization());
  const scores base = evaluate(random_enc, train, test, probe);
  std::printf("random-init ConvNet-S: k-NN %.2f%%\n", 100 * base.knn);

  simclr method(convnet_s<>(1, rng(seed)), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(seed).fork(1)),
                nt_xent(temperature));
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = lr, .weight_decay = 0.0f});
  data::loader loader(train, augment::fashion_mnist_simclr(28),
                      {.batch_size = batch, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed});
  trainer_options to;
  to.epochs = epochs;
  to.budget_seconds = minutes * 60;
  to.csv_log = csv;
  to.checkpoint_path = checkpoint;
  const train_summary sum = ssl::train(method, opt, loader, to);
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f\n", (long long)sum.steps,
              double(sum.steps) / double(loader.steps_per_epoch()), sum.seconds, sum.images_per_second,
              sum.mean_loss_last_100);

  const scores s = evaluate(method.encoder(), train, test, probe);
  std::printf("SimCLR ConvNet-S:      k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", 100 * s.knn, 100 * base.knn,
              100 * (s.knn - base.knn));
  if (probe) std::printf("linear probe: SimCLR %.2f%%, random init %.2f%%\n", 100 * s.linear, 100 * base.linear);
  return 0;
}
