#pragma once
// Helpers shared by the *_fashion_mnist examples: k-NN (and linear probe, alignment / uniformity) of
// an encoder on the test set, the random-init baselines (optionally cached in files), the view pairs of
// alignment / uniformity (also used by vit_example_support.hpp), and the common training loop
// (Adam without weight decay + a shuffling loader + ssl::train) with its printed summary.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <limits>
#include <string>
#include <utility>

#include <ssl/augment/presets.hpp>
#include <ssl/data/loader.hpp>
#include <ssl/dist/data_parallel.hpp>
#include <ssl/dist/sync_batch_norm.hpp>
#include <ssl/dist/thread_group.hpp>
#include <ssl/data/mnist.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/eval/features.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/eval/linear_probe.hpp>
#include <ssl/eval/view_alignment.hpp>
#include <ssl/nn/copy_state.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/train/trainer.hpp>

namespace ssl_example {

using ssl::data::in_memory_dataset;

/// k-NN (k = 20, T = 0.07) accuracy on `test` of the encoder's features, `train` as the memory bank.
inline double knn_accuracy(const ssl::convnet_s<>& enc, const in_memory_dataset& train, const in_memory_dataset& test) {
  const auto norm = ssl::eval::fashion_mnist_normalization();
  return ssl::eval::knn_classify(ssl::eval::extract_features(enc, train.images(), norm), train.labels(),
                                 ssl::eval::extract_features(enc, test.images(), norm), test.labels())
      .accuracy;
}

/// The random-init ConvNet-S of `seed` with its BN statistics recalibrated on the train images
/// (WORKLOADS.md Q2).
inline ssl::convnet_s<> random_init_convnet(const in_memory_dataset& train, uint64_t seed) {
  ssl::convnet_s<> enc(1, ssl::rng(seed));
  ssl::eval::recalibrate_batch_norm(enc, train.images(), ssl::eval::fashion_mnist_normalization());
  return enc;
}

/// k-NN of the random-init ConvNet-S (BN recalibrated), read from / written to `cache` when given
/// (the baseline depends only on the seed, so several examples can share it).
inline double random_init_knn(const in_memory_dataset& train, const in_memory_dataset& test, uint64_t seed,
                              const std::string& cache) {
  if (!cache.empty()) {
    std::ifstream in(cache);
    uint64_t s = 0;
    double v = 0;
    if (in >> s >> v && s == seed) return v;
  }
  const double v = knn_accuracy(random_init_convnet(train, seed), train, test);
  if (!cache.empty()) std::ofstream(cache) << seed << ' ' << v << '\n';
  return v;
}

/// random_init_knn, printed.
inline double report_random_init_knn(const in_memory_dataset& train, const in_memory_dataset& test, uint64_t seed,
                                     const std::string& cache) {
  const double base = random_init_knn(train, test, seed, cache);
  std::printf("random-init ConvNet-S: k-NN %.2f%%\n", 100 * base);
  return base;
}

/// The settings every example takes from its command line.
struct train_settings {
  double minutes = 3;  // wall-clock training budget
  int64_t epochs = 100;
  int64_t batch = 256;
  float lr = 1e-3f;
  uint64_t seed = 0;  // data order and augmentations
  int workers = 2;    // loader threads
  std::string csv;    // per-step CSV log
  std::string checkpoint;
  int threads = 2;                                        // compute threads (all ranks together)
  int ranks = 1;  // > 1: data-parallel thread ranks sharing each batch (examples that register add_ranks_option)
  bool sync_bn = false;  // with ranks > 1: BatchNorm statistics of the global batch (SyncBatchNorm)
  std::string data_dir = ssl::data::fashion_mnist_dir();  // Fashion-MNIST IDX files
  std::string baseline_cache;                             // file caching the random-init k-NN (.linear, .geometry beside it)
  bool linear_probe = false;                              // also a linear probe, trained and random-init
};

/// Registers the options every example shares (budget, batch, lr, seed, threads, data, logs);
/// `batch_help` says what one batch element is for this method.
inline void add_common_options(CLI::App& app, train_settings& s, const std::string& batch_help) {
  app.add_option("--minutes", s.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", s.epochs, "upper bound on epochs");
  app.add_option("--batch", s.batch, batch_help);
  app.add_option("--lr", s.lr, "Adam learning rate");
  app.add_option("--seed", s.seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", s.workers, "loader threads");
  app.add_option("--threads", s.threads, "compute threads");
  app.add_option("--data", s.data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", s.csv, "per-step CSV log");
  app.add_option("--baseline-cache", s.baseline_cache,
                 "file caching the random-init k-NN (seed and accuracy); FILE.linear and FILE.geometry beside it cache "
                 "its linear probe and alignment / uniformity");
  app.add_flag("--linear-probe", s.linear_probe,
               "also a linear probe (L-BFGS on standardised frozen features) of the trained and the random-init encoder");
}

/// --ranks and --sync-bn for the examples built on train_with_adam: s.ranks data-parallel replicas,
/// each on its share of every batch (BatchNorm per rank, or over the global batch with --sync-bn).
inline void add_ranks_option(CLI::App& app, train_settings& s) {
  app.add_option("--ranks", s.ranks,
                 "data-parallel thread ranks sharing each --batch (dist::data_parallel; BatchNorm statistics per rank)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--sync-bn", s.sync_bn, "with --ranks: SyncBatchNorm (BatchNorm statistics of the global batch)");
  app.parse_complete_callback([&s] {  // a usage error, reported by CLI11_PARSE like any other
    if (s.sync_bn && s.ranks < 2) throw CLI::ValidationError("--sync-bn", "needs --ranks of 2 or more");
  });
}

/// --sync-bn on a replica: a method that lists its BatchNorms itself (for_each_batch_norm, EMA
/// copies included: msn) as a whole, else its encoder() and head() (no EMA copies, so synchronising
/// after composing is enough); with `comm` null, back to per-replica statistics.
template <class M, class C>
void sync_replica_batch_norm(M& replica, C* comm) {
  if constexpr (ssl::HasBatchNorms<M>) {
    if (comm)
      ssl::dist::sync_batch_norm(replica, *comm);
    else
      ssl::dist::unsync_batch_norm(replica);
  } else if constexpr (requires { ssl::dist::unsync_batch_norm(replica.encoder()); ssl::dist::unsync_batch_norm(replica.head()); }) {
    if (comm) {
      ssl::dist::sync_batch_norm(replica.encoder(), *comm);
      ssl::dist::sync_batch_norm(replica.head(), *comm);
    } else {
      ssl::dist::unsync_batch_norm(replica.encoder());
      ssl::dist::unsync_batch_norm(replica.head());
    }
  } else {
    throw ssl::value_error("--sync-bn: this method's encoder and head have no BatchNorm to synchronise");
  }
}

/// Backbone features of the train and test images from one pass each: (N, 256) and (M, 256).
struct split_features {
  ssl::tensor<ssl::cpu> train, test;
};
inline split_features features_of(const ssl::convnet_s<>& enc, const in_memory_dataset& train,
                                   const in_memory_dataset& test) {
  const auto norm = ssl::eval::fashion_mnist_normalization();
  return {ssl::eval::extract_features(enc, train.images(), norm), ssl::eval::extract_features(enc, test.images(), norm)};
}

/// Linear-probe test accuracy (eval/linear_probe.hpp, WORKLOADS.md protocol) on extracted features.
inline double linear_probe_accuracy(const split_features& f, const in_memory_dataset& train,
                                    const in_memory_dataset& test) {
  return ssl::eval::linear_probe(f.train, train.labels(), f.test, test.labels()).test_accuracy;
}

/// Linear probe of the random-init ConvNet-S (BN recalibrated), read from / written to
/// `<baseline_cache>.linear` when a cache is given.
inline double random_init_linear_probe(const in_memory_dataset& train, const in_memory_dataset& test,
                                       const train_settings& s) {
  const std::string cache = s.baseline_cache.empty() ? std::string() : s.baseline_cache + ".linear";
  if (!cache.empty()) {
    std::ifstream in(cache);
    uint64_t seed = 0;
    double v = 0;
    if (in >> seed >> v && seed == s.seed) return v;
  }
  const double v = linear_probe_accuracy(features_of(random_init_convnet(train, s.seed), train, test), train, test);
  if (!cache.empty()) std::ofstream(cache) << s.seed << ' ' << v << '\n';
  return v;
}

/// With s.linear_probe: the linear probe on the encoder's features `f` beside the random-init
/// ConvNet-S's, printed as "<name> ConvNet-S: linear probe A%  (random init B%, +C points)".
inline void report_linear_probe(const char* name, const split_features& f, const in_memory_dataset& train,
                                const in_memory_dataset& test, const train_settings& s) {
  if (!s.linear_probe) return;
  const double base = random_init_linear_probe(train, test, s), acc = linear_probe_accuracy(f, train, test);
  std::printf("%s ConvNet-S: linear probe %.2f%%  (random init %.2f%%, %+.2f points)\n", name, 100 * acc, 100 * base,
              100 * (acc - base));
}

/// The shuffling loader (last partial batch dropped) of replica `rank` of `world_size`: its share of
/// every batch of `batch` images (the whole batch for one replica).
template <class D, class V>
auto replica_loader(const D& data, const V& views, int64_t batch, int workers, uint64_t seed, int rank, int world_size) {
  return ssl::data::loader(data, views,
                           {.batch_size = batch / world_size, .shuffle = true, .drop_last = true, .num_workers = workers,
                            .seed = seed, .rank = rank, .world_size = world_size});
}

/// Data-parallel training on `ranks` thread ranks (`threads` compute threads in all): each rank
/// trains a copy of `method` wrapped in dist::data_parallel by calling
/// train_replica(wrapper, rank, ranks) on its share of every batch of `batch` images (with
/// `sync_bn`, its encoder's and head's BatchNorms synchronised); then `method` becomes rank 0's
/// replica. Returns rank 0's summary with the images of all ranks per second.
template <class M, class TrainReplica>
ssl::train_summary train_on_ranks(M& method, int ranks, int threads, int64_t batch, TrainReplica&& train_replica,
                                  bool sync_bn = false) {
  ssl::check<ssl::value_error>(batch % ranks == 0, "--batch (", batch, ") must be a multiple of --ranks (", ranks, ")");
  ssl::train_summary sum;
  ssl::dist::thread_group(ranks, std::max(1, threads / ranks)).run([&](ssl::dist::thread_communicator& comm) {
    M replica = method;
    if (sync_bn) sync_replica_batch_norm(replica, &comm);
    ssl::train_summary mine;
    {
      ssl::dist::data_parallel dp(replica, comm);  // a method with set_replica draws its rows of the global draw
      mine = train_replica(dp, comm.rank(), comm.world_size());
    }  // the wrapper hands the replica back as a single process (no hooks into comm)
    if (sync_bn) sync_replica_batch_norm(replica, static_cast<ssl::dist::thread_communicator*>(nullptr));
    const float spread = ssl::dist::max_replica_difference(replica, comm);
    if (comm.rank() != 0) return;
    std::printf("%d ranks x %lld images; replicas differ by %g\n", ranks, (long long)(batch / ranks), double(spread));
    sum = mine;
    sum.images_per_second *= double(ranks);
    method = replica;
  });
  return sum;
}

/// Trains `method` on `data` seen through `views` with Adam (lr, no weight decay), a shuffling
/// loader that drops the last partial batch, and the budget of `s`; prints
/// "trained N steps ... final loss X<loss_note>". With s.ranks > 1 (host methods), s.ranks thread
/// ranks each train a copy of `method` on their share of every batch (dist::data_parallel; rank 0
/// logs), and `method` becomes rank 0's replica.
template <class M, class D, class V>
ssl::train_summary train_with_adam(M& method, const D& data, V views, const train_settings& s,
                                   const std::string& loss_note = "") {
  int64_t steps_per_epoch = 1;
  auto train_replica = [&](auto& trained, int rank, int world_size) {
    ssl::param_list<typename M::backend_type> params;  // on the GPU for a cuda method (one template argument)
    trained.collect(params, "");
    ssl::adamw opt(params, {.lr = s.lr, .weight_decay = 0.0f});
    auto loader = replica_loader(data, views, s.batch, s.workers, s.seed, rank, world_size);
    ssl::trainer_options to;
    to.epochs = s.epochs;
    to.budget_seconds = s.minutes * 60;
    to.progress = rank == 0;
    if (rank == 0) {  // the replicas are identical: rank 0 writes
      to.csv_log = s.csv;
      to.checkpoint_path = s.checkpoint;
      steps_per_epoch = loader.steps_per_epoch();
    }
    return ssl::train(trained, opt, loader, to);
  };
  ssl::check<ssl::value_error>(!s.sync_bn || s.ranks > 1, "--sync-bn needs --ranks of 2 or more");
  ssl::train_summary sum;
  if (s.ranks <= 1) {
    sum = train_replica(method, 0, 1);
  } else if constexpr (std::same_as<typename M::backend_type, ssl::cpu>) {
    sum = train_on_ranks(method, s.ranks, s.threads, s.batch, train_replica, s.sync_bn);
  } else {
    throw ssl::value_error("--ranks: data-parallel training is host (cpu) only");
  }
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f%s\n", (long long)sum.steps,
              double(sum.steps) / double(steps_per_epoch), sum.seconds, sum.images_per_second, sum.mean_loss_last_100,
              loss_note.c_str());
  return sum;
}

/// Prints "<name> ConvNet-S: k-NN A%  (random init B%, +C points)".
inline void report_knn(const char* name, double acc, double base) {
  std::printf("%s ConvNet-S: k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", name, 100 * acc, 100 * base,
              100 * (acc - base));
}

/// The view pairs of every alignment / uniformity in the examples and ssl_train: the two Q3 views
/// (augment::fashion_mnist_simclr) of each test image, image i's from rng(12345).fork(i)
/// (eval::draw_view_pairs), so every program and every encoder sees the same pairs. (N, 1, 28, 28) each.
inline ssl::eval::view_pairs test_view_pairs(const in_memory_dataset& test) {
  return ssl::eval::draw_view_pairs(test.images(), ssl::augment::fashion_mnist_simclr(int(test.height())), test.size(),
                                    /*seed=*/12345);
}

/// Alignment and uniformity of the encoder's frozen features (encoder.infer) of the view pairs.
template <class E>
ssl::eval::alignment_uniformity_result view_geometry(const E& enc, const ssl::eval::view_pairs& pairs) {
  return ssl::eval::alignment_uniformity(ssl::eval::features_of(enc, pairs.x), ssl::eval::features_of(enc, pairs.y));
}

/// Alignment and uniformity of the random-init ConvNet-S of s.seed (BN recalibrated) on `pairs`
/// (test_view_pairs), read from / written to `<baseline_cache>.geometry` ("seed alignment uniformity",
/// full precision) when a cache is given.
inline ssl::eval::alignment_uniformity_result random_init_geometry(const ssl::eval::view_pairs& pairs,
                                                                   const in_memory_dataset& train,
                                                                   const train_settings& s) {
  const std::string cache = s.baseline_cache.empty() ? std::string() : s.baseline_cache + ".geometry";
  ssl::eval::alignment_uniformity_result r;
  if (!cache.empty()) {
    std::ifstream in(cache);
    uint64_t seed = 0;
    if (in >> seed >> r.alignment >> r.uniformity && seed == s.seed) return r;
  }
  r = view_geometry(random_init_convnet(train, s.seed), pairs);
  if (!cache.empty())
    std::ofstream(cache) << s.seed << ' ' << std::setprecision(std::numeric_limits<double>::max_digits10) << r.alignment
                         << ' ' << r.uniformity << '\n';
  return r;
}

/// Alignment and uniformity (Wang & Isola; eval/view_alignment.hpp) of the encoder's frozen features
/// on test_view_pairs, beside the random-init ConvNet-S's (random_init_geometry) on the same pairs, printed
/// as "<name> ConvNet-S: alignment A, uniformity U  (random init A0, U0; lower is better)".
inline void report_alignment_uniformity(const char* name, const ssl::convnet_s<>& enc, const in_memory_dataset& train,
                                        const in_memory_dataset& test, const train_settings& s) {
  const ssl::eval::view_pairs pairs = test_view_pairs(test);
  const auto r = view_geometry(enc, pairs), b = random_init_geometry(pairs, train, s);
  std::printf("%s ConvNet-S: alignment %.3f, uniformity %.3f  (random init %.3f, %.3f; lower is better)\n", name,
              r.alignment, r.uniformity, b.alignment, b.uniformity);
}

/// k-NN of the encoder beside the random-init `base` and, with s.linear_probe, its linear probe,
/// both from one feature pass; then its alignment and uniformity.
inline void report_encoder(const char* name, const ssl::convnet_s<>& enc, const in_memory_dataset& train,
                           const in_memory_dataset& test, double base, const train_settings& s) {
  const split_features f = features_of(enc, train, test);
  report_knn(name, ssl::eval::knn_classify(f.train, train.labels(), f.test, test.labels()).accuracy, base);
  report_linear_probe(name, f, train, test, s);
  report_alignment_uniformity(name, enc, train, test, s);
}

/// Trains on `train` with two views of WORKLOADS.md Q3's Fashion-MNIST recipe, then reports the
/// encoder's k-NN on `test` beside the random-init `base` (and its linear probe with s.linear_probe).
template <class M>
int train_and_report(M& method, const in_memory_dataset& train, const in_memory_dataset& test, double base,
                     const train_settings& s, const char* name) {
  train_with_adam(method, train, ssl::augment::fashion_mnist_simclr(28), s);
  if constexpr (std::same_as<typename M::backend_type, ssl::cpu>) {
    report_encoder(name, method.encoder(), train, test, base, s);
  } else {  // trained on a device: evaluated on the host, from a copy of its weights and BN statistics
    ssl::convnet_s<> host(method.encoder().in_channels());
    ssl::copy_state(method.encoder(), host);
    report_encoder(name, host, train, test, base, s);
  }
  return 0;
}

}  // namespace ssl_example
