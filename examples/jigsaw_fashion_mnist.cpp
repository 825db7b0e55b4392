// Jigsaw puzzles on Fashion-MNIST: each 28x28 image is cut into 3x3 cells of 9x9 pixels, a 7x7 tile
// is taken at a random offset in each cell (2 pixels of jitter), the tiles are shuffled by one of 64
// maximal-Hamming permutations, and ConvNet-S (shared over the 9 tiles; 7x7 -> 1x1 before the pool)
// + a linear classifier on the 9 x 256 concatenated features predict the permutation. Adam.
// The encoder's BN running statistics come from 7x7 tiles; before evaluating on whole images they
// are re-estimated on the (unlabelled) train images, as for the random-init baseline. Both k-NN
// numbers are printed.
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

int main(int argc, char** argv) {
  CLI::App app{"Jigsaw puzzles (ConvNet-S) on Fashion-MNIST: train without labels, report k-NN accuracy"};
  double minutes = 3;
  int64_t epochs = 100, batch = 256, tile = 7;
  int permutations = 64;
  float lr = 1e-3f;
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  std::string csv, baseline_cache, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", epochs, "upper bound on epochs");
  app.add_option("--batch", batch, "images (puzzles) per step");
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--permutations", permutations, "size of the permutation set (classes)");
  app.add_option("--tile", tile, "tile side (at most 9 for 28x28 images)");
  app.add_option("--seed", seed, "seed of weights, data order, puzzles");
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
  jigsaw_method method(convnet_s<>(1, g),
                       projection_mlp<>({.in_dim = 9 * 256, .hidden_dim = 256, .out_dim = permutations, .layers = 1}, g.fork(1)),
                       {.permutations = permutations, .tile = tile, .seed = seed});
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = lr, .weight_decay = 0.0f});
  // one view: flip only (the puzzle's own crops are the augmentation), normalised
  auto view = augment::multi_view{1, augment::compose(augment::horizontal_flip{0.5f}, augment::fashion_mnist_normalize())};
  data::loader loader(train, view, {.batch_size = batch, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed});
  trainer_options to;
  to.epochs = epochs;
  to.budget_seconds = minutes * 60;
  to.csv_log = csv;
  const train_summary sum = ssl::train(method, opt, loader, to);
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f (chance %.4f)\n",
              (long long)sum.steps, double(sum.steps) / double(loader.steps_per_epoch()), sum.seconds,
              sum.images_per_second, sum.mean_loss_last_100, std::log(double(permutations)));
  const double as_trained = knn_accuracy(method.encoder(), train, test);
  eval::recalibrate_batch_norm(method.encoder(), train.images(), eval::fashion_mnist_normalization());
  const double acc = knn_accuracy(method.encoder(), train, test);
  std::printf("Jigsaw ConvNet-S: k-NN %.2f%% with BN re-estimated on whole images (%.2f%% with the tiles' BN statistics)"
              "  (random init %.2f%%, %+.2f points)\n",
              100 * acc, 100 * as_trained, 100 * base, 100 * (acc - base));
  return 0;
}
