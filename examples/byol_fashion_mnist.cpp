// BYOL (or SimSiam with --simsiam) on Fashion-MNIST.
//
// ConvNet-S + projector 256-512-128 + predictor 128-512-128 (BN + ReLU hidden layers); the target
// is an EMA copy of encoder + projector (tau 0.99 -> 1 cosine here; the paper's 0.996 is for
// hundreds of epochs). Views: the Fashion-MNIST recipe of WORKLOADS.md Q3 (affine crop (0.3, 1),
// flip, brightness/contrast). Adam. Reports k-NN (k = 20, T = 0.07) on the test set beside the
// random-init encoder's (BN recalibrated).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <ssl/augment/presets.hpp>
#include <ssl/data/loader.hpp>
#include <ssl/data/mnist.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/eval/features.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/train/trainer.hpp>

using namespace ssl;

static double knn_accuracy(const convnet_s<>& enc, const data::in_memory_dataset& train, const data::in_memory_dataset& test) {
  const auto norm = eval::fashion_mnist_normalization();
  return eval::knn_classify(eval::extract_features(enc, train.images(), norm), train.labels(),
                            eval::extract_features(enc, test.images(), norm), test.labels())
      .accuracy;
}

/// k-NN of the random-init ConvNet-S (BN recalibrated), read from / written to `cache` when given
/// (the baseline depends only on the seed, so several examples can share it).
static double random_init_knn(const data::in_memory_dataset& train, const data::in_memory_dataset& test, uint64_t seed,
                              const std::string& cache) {
  if (!cache.empty()) {
    std::ifstream in(cache);
    uint64_t s = 0;
    double v = 0;
    if (in >> s >> v && s == seed) return v;
  }
  convnet_s<> random_enc(1, rng(seed));
  eval::recalibrate_batch_norm(random_enc, train.images(), eval::fashion_mnist_normalization());
  const double v = knn_accuracy(random_enc, train, test);
  if (!cache.empty()) std::ofstream(cache) << seed << ' ' << v << '\n';
  return v;
}

template <class M>
static int run(M& method, const data::in_memory_dataset& train, const data::in_memory_dataset& test, double base,
               float lr, int64_t batch, int64_t epochs, double minutes, int workers, uint64_t seed, const std::string& csv,
               const char* name) {
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = lr, .weight_decay = 0.0f});
  data::loader loader(train, augment::fashion_mnist_simclr(28),
                      {.batch_size = batch, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed});
  trainer_options to;
  to.epochs = epochs;
  to.budget_seconds = minutes * 60;
  to.csv_log = csv;
  const train_summary sum = ssl::train(method, opt, loader, to);
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f\n", (long long)sum.steps,
              double(sum.steps) / double(loader.steps_per_epoch()), sum.seconds, sum.images_per_second,
              sum.mean_loss_last_100);
  const double acc = knn_accuracy(method.encoder(), train, test);
  std::printf("%s ConvNet-S: k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", name, 100 * acc, 100 * base,
              100 * (acc - base));
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"BYOL / SimSiam (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  double minutes = 3;
  int64_t epochs = 100, batch = 256;
  float lr = 1e-3f, tau = 0.99f;
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  bool simsiam = false;
  std::string csv, baseline_cache, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", epochs, "upper bound on epochs");
  app.add_option("--batch", batch, "images per step (two views each)");
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--tau", tau, "target EMA momentum at step 0 (cosine to 1)");
  app.add_flag("--simsiam", simsiam, "SimSiam: no target network, stop-gradient on the online network");
  app.add_option("--seed", seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", workers, "loader threads");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", csv, "per-step CSV log");
  app.add_option("--baseline-cache", baseline_cache, "file caching the random-init k-NN (seed and accuracy)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  const double base = random_init_knn(train, test, seed, baseline_cache);
  std::printf("random-init ConvNet-S: k-NN %.2f%%\n", 100 * base);

  const rng g(seed);
  auto projector = projection_mlp<>({.in_dim = 256, .hidden_dim = 512, .out_dim = 128}, g.fork(1));
  auto predictor = projection_mlp<>({.in_dim = 128, .hidden_dim = 512, .out_dim = 128}, g.fork(2));
  if (simsiam) {
    simsiam_method<convnet_s<>, projection_mlp<>> method(convnet_s<>(1, g), projector, predictor);
    return run(method, train, test, base, lr, batch, epochs, minutes, workers, seed, csv, "SimSiam");
  }
  byol_method method(convnet_s<>(1, g), projector, predictor, {.tau_base = tau});
  return run(method, train, test, base, lr, batch, epochs, minutes, workers, seed, csv, "BYOL");
}
