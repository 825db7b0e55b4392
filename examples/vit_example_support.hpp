#pragma once
// Helpers shared by the ViT examples (mae_fashion_mnist, maskfeat_fashion_mnist, dino_fashion_mnist,
// baselines_fashion_mnist): [CLS] and mean-pooled features of a ViT from one token pass per batch,
// their k-NN (k = 20, T = 0.07) and optional linear-probe accuracies, their alignment / uniformity on
// example_support.hpp's test view pairs, and the random-init ViT-T/4 baselines, optionally cached in a
// small text file keyed by seed (and "with/without probe"); and the masked-image-modelling training
// recipe (WORKLOADS.md Q4: AdamW betas (0.9, 0.95), wd 0.05, lr 1e-3 after a linear warm-up over 100
// steps, batch 256) with its command-line options; and supervised fine-tuning of the trained ViT
// beside the random-init one (MAE's recipe scaled to ViT-T/4: layer-wise lr decay, drop path,
// label smoothing), on all or a class-balanced fraction of the train labels.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <ssl/data/dataset.hpp>
#include <ssl/data/loader.hpp>
#include <ssl/data/mnist.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/eval/features.hpp>
#include <ssl/eval/fine_tune.hpp>
#include <ssl/eval/label_subset.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/eval/linear_probe.hpp>
#include <ssl/io/safetensors.hpp>
#include <ssl/methods/detail/method_parts.hpp>  // methods_detail::rows
#include <ssl/optim/adamw.hpp>
#include <ssl/optim/schedule.hpp>
#include <ssl/train/trainer.hpp>

#include "example_support.hpp"  // test_view_pairs

namespace ssl_example {

/// Accuracies in [0, 1] of a ViT's [CLS] and mean-pooled features; linear_* = -1 when not probed.
struct vit_scores {
  double knn_cls = 0, knn_mean = 0, linear_cls = -1, linear_mean = -1;
};

namespace detail {
/// [CLS] and mean-pooled features of rows [0, N) from one token pass per batch, each batch's input
/// made by `slice(begin, end)`: (N, D) each.
template <class Slice>
std::pair<ssl::tensor<ssl::cpu>, ssl::tensor<ssl::cpu>> pooled_in_batches(const ssl::vit<>& enc, int64_t N,
                                                                         int64_t batch, Slice&& slice) {
  using ssl::tensor;
  using ssl::cpu;
  const int64_t D = enc.feature_dim();
  tensor<cpu> cls(ssl::shape{N, D}), mean(ssl::shape{N, D});
  for (int64_t b = 0; b < N; b += batch) {
    const int64_t e = std::min(N, b + batch);
    const tensor<cpu> tokens = enc.infer_tokens(slice(b, e));  // (n, 1 + L, D)
    const tensor<cpu> c = ssl::vit<>::pool_tokens(tokens, ssl::vit_pool::cls);
    const tensor<cpu> m = ssl::vit<>::pool_tokens(tokens, ssl::vit_pool::mean);
    std::copy_n(c.data(), c.numel(), cls.data() + b * D);
    std::copy_n(m.data(), m.numel(), mean.data() + b * D);
  }
  return {std::move(cls), std::move(mean)};
}
}  // namespace detail

/// [CLS] and mean-pooled (patch tokens, after the final norm) features of all images from one token
/// pass per batch. images: (N, C, H, W) in [0, 1], normalised with the Fashion-MNIST statistics;
/// returns (N, D) each.
inline std::pair<ssl::tensor<ssl::cpu>, ssl::tensor<ssl::cpu>> vit_features(const ssl::vit<>& enc,
                                                                            const ssl::tensor<ssl::cpu>& images,
                                                                            int64_t batch = 500) {
  const auto norm = ssl::eval::fashion_mnist_normalization();
  return detail::pooled_in_batches(enc, images.dim(0), batch, [&](int64_t b, int64_t e) {
    return ssl::eval::normalized_slice(images, b, e, norm);
  });
}

/// The same for inputs that are ready as they are (already normalised, e.g. augmented views):
/// (N, C, H, W) -> (N, D) each.
inline std::pair<ssl::tensor<ssl::cpu>, ssl::tensor<ssl::cpu>> vit_features_of_ready(const ssl::vit<>& enc,
                                                                                     const ssl::tensor<ssl::cpu>& inputs,
                                                                                     int64_t batch = 500) {
  return detail::pooled_in_batches(enc, inputs.dim(0), batch,
                                   [&](int64_t b, int64_t e) { return ssl::methods_detail::rows(inputs, b, e); });
}

/// k-NN on `test` (`train` as the memory bank) of the [CLS] and mean-pooled features, and when
/// `probe` the linear probes (L-BFGS logistic regression on standardised features) on both.
inline vit_scores evaluate_vit(const ssl::vit<>& enc, const ssl::data::in_memory_dataset& train,
                               const ssl::data::in_memory_dataset& test, bool probe) {
  const auto [tr_cls, tr_mean] = vit_features(enc, train.images());
  const auto [te_cls, te_mean] = vit_features(enc, test.images());
  vit_scores s;
  s.knn_cls = ssl::eval::knn_classify(tr_cls, train.labels(), te_cls, test.labels()).accuracy;
  s.knn_mean = ssl::eval::knn_classify(tr_mean, train.labels(), te_mean, test.labels()).accuracy;
  if (probe) {
    s.linear_cls = ssl::eval::linear_probe(tr_cls, train.labels(), te_cls, test.labels()).test_accuracy;
    s.linear_mean = ssl::eval::linear_probe(tr_mean, train.labels(), te_mean, test.labels()).test_accuracy;
  }
  return s;
}

namespace detail {
/// What a cache reader makes of one line of a small text cache file: keep it, take it as the answer
/// (the first such line wins; it is kept too), or drop it (a stale entry the caller will replace).
enum class cache_verdict { keep, take, drop };

/// The cache file's lines, judged one by one: `answer` the first line judged `take` (empty: none),
/// `kept` every non-empty line not dropped (to be written back with a new entry). No file: nothing.
struct cache_lines {
  std::string answer;
  std::vector<std::string> kept;
};
template <class Judge>
cache_lines read_cache(const std::string& path, Judge&& judge) {
  cache_lines c;
  if (path.empty()) return c;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const cache_verdict v = judge(line);
    if (v == cache_verdict::drop) continue;
    if (v == cache_verdict::take && c.answer.empty()) c.answer = line;
    c.kept.push_back(line);
  }
  return c;
}

/// Rewrites the cache file: the `kept` lines, then `entry` (nothing when `path` is empty).
inline void write_cache(const std::string& path, const std::vector<std::string>& kept, const std::string& entry) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : kept) out << l << '\n';
  out << entry << '\n';
}

// One cache line: "vit-t4 <seed> <probe 0|1> <knn_cls> <knn_mean> <linear_cls> <linear_mean>".
// Other lines are kept as they are when the file is rewritten. (Do not share the file with
// example_support.hpp's ConvNet-S cache: that one reads only its first line and rewrites the file.)
inline constexpr const char* vit_cache_tag = "vit-t4";

inline bool parse_vit_cache_line(const std::string& line, uint64_t& seed, int& probe, vit_scores& s) {
  std::istringstream in(line);
  std::string tag;
  return bool(in >> tag >> seed >> probe >> s.knn_cls >> s.knn_mean >> s.linear_cls >> s.linear_mean) &&
         tag == vit_cache_tag;
}
}  // namespace detail

/// The random-init ViT-T/4 (vit_options::tiny4(), rng(seed)) scores, read from `cache` when it
/// holds them for this seed (an entry with probes also answers a request without), otherwise
/// measured and stored there (the entry for the same seed and probe setting is replaced).
/// An empty `cache` always measures.
inline vit_scores random_init_vit_scores(const ssl::data::in_memory_dataset& train,
                                         const ssl::data::in_memory_dataset& test, uint64_t seed, bool probe,
                                         const std::string& cache) {
  // an entry with probes also answers a request without; one without is replaced by one with
  const detail::cache_lines lines = detail::read_cache(cache, [&](const std::string& line) {
    uint64_t s = 0;
    int p = 0;
    vit_scores v;
    if (!detail::parse_vit_cache_line(line, s, p, v) || s != seed) return detail::cache_verdict::keep;
    return p == 1 || !probe ? detail::cache_verdict::take : detail::cache_verdict::drop;
  });
  uint64_t s = 0;
  int p = 0;
  vit_scores v;
  if (!lines.answer.empty() && detail::parse_vit_cache_line(lines.answer, s, p, v)) {
    if (!probe) v.linear_cls = v.linear_mean = -1;
    return v;
  }
  v = evaluate_vit(ssl::vit<>(ssl::vit_options::tiny4(), ssl::rng(seed)), train, test, probe);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %llu %d %.6f %.6f %.6f %.6f", detail::vit_cache_tag, (unsigned long long)seed,
                int(probe), v.knn_cls, v.knn_mean, v.linear_cls, v.linear_mean);
  detail::write_cache(cache, lines.kept, buf);
  return v;
}

/// The Fashion-MNIST train and test splits from `dir`, with their sizes printed.
struct fashion_mnist_splits {
  ssl::data::in_memory_dataset train, test;
};
inline fashion_mnist_splits load_fashion_mnist_splits(const std::string& dir) {
  fashion_mnist_splits d{ssl::data::load_fashion_mnist(ssl::data::split::train, dir),
                         ssl::data::load_fashion_mnist(ssl::data::split::test, dir)};
  std::printf("Fashion-MNIST: %lld train, %lld test images\n", (long long)d.train.size(), (long long)d.test.size());
  return d;
}

/// random_init_vit_scores, with its k-NN printed: "random-init ViT-T/4:  k-NN [CLS] A%, mean-pooled B%".
inline vit_scores report_random_init_vit(const ssl::data::in_memory_dataset& train,
                                         const ssl::data::in_memory_dataset& test, uint64_t seed, bool probe,
                                         const std::string& cache) {
  const vit_scores base = random_init_vit_scores(train, test, seed, probe, cache);
  std::printf("random-init ViT-T/4:  k-NN [CLS] %.2f%%, mean-pooled %.2f%%\n", 100 * base.knn_cls, 100 * base.knn_mean);
  return base;
}

/// Prints "<name> [CLS]: k-NN A%  (random init B%, +C points)", the same for mean-pooled, and
/// when probed the linear-probe line; the labels are padded so the columns line up
/// (name "MAE ViT-T/4" gives the MAE example's historical layout).
inline void report_vit_scores(const char* name, const vit_scores& s, const vit_scores& base, bool probe) {
  const std::string cls = std::string(name) + " [CLS]:", mean = std::string(name) + " mean-pooled:";
  const int width = int(std::max<size_t>(26, mean.size() + 2));
  std::printf("%-*s k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", width, cls.c_str(), 100 * s.knn_cls,
              100 * base.knn_cls, 100 * (s.knn_cls - base.knn_cls));
  std::printf("%-*s k-NN %.2f%%  (random init %.2f%%, %+.2f points)\n", width, mean.c_str(), 100 * s.knn_mean,
              100 * base.knn_mean, 100 * (s.knn_mean - base.knn_mean));
  if (probe)
    std::printf("linear probe: [CLS] %.2f%% (random %.2f%%), mean-pooled %.2f%% (random %.2f%%)\n", 100 * s.linear_cls,
                100 * base.linear_cls, 100 * s.linear_mean, 100 * base.linear_mean);
}

/// Alignment and uniformity (Wang & Isola; eval/alignment_uniformity.hpp) of a ViT's [CLS] and
/// mean-pooled features of view pairs.
struct vit_geometry {
  ssl::eval::alignment_uniformity_result cls, mean;
};

/// vit_geometry of the encoder's frozen features (infer_tokens, pooled both ways from one token pass)
/// of `pairs` (test_view_pairs: ready, normalised views).
inline vit_geometry vit_view_geometry(const ssl::vit<>& enc, const ssl::eval::view_pairs& pairs) {
  const auto [x_cls, x_mean] = vit_features_of_ready(enc, pairs.x);
  const auto [y_cls, y_mean] = vit_features_of_ready(enc, pairs.y);
  return {ssl::eval::alignment_uniformity(x_cls, y_cls), ssl::eval::alignment_uniformity(x_mean, y_mean)};
}

namespace detail {
// One geometry line in the same cache file as the scores:
// "vit-t4-geometry <seed> <[CLS] alignment> <[CLS] uniformity> <mean alignment> <mean uniformity>";
// the scores' lines and this one keep each other when either is rewritten.
inline constexpr const char* vit_geometry_cache_tag = "vit-t4-geometry";
}  // namespace detail

/// vit_view_geometry of the random-init ViT-T/4 (vit_options::tiny4(), rng(seed)) on `pairs`
/// (test_view_pairs), read from `cache` when it holds a geometry line for this seed, otherwise measured
/// and added there (full precision; only alignment and uniformity are kept). An empty `cache` always measures.
inline vit_geometry random_init_vit_geometry(const ssl::eval::view_pairs& pairs, uint64_t seed,
                                             const std::string& cache) {
  const auto parse = [&](const std::string& line, vit_geometry& g) {
    std::istringstream l(line);
    std::string tag;
    uint64_t s = 0;
    return l >> tag >> s >> g.cls.alignment >> g.cls.uniformity >> g.mean.alignment >> g.mean.uniformity &&
           tag == detail::vit_geometry_cache_tag && s == seed;
  };
  const detail::cache_lines lines = detail::read_cache(cache, [&](const std::string& line) {
    vit_geometry g;
    return parse(line, g) ? detail::cache_verdict::take : detail::cache_verdict::keep;
  });
  vit_geometry g;
  if (!lines.answer.empty() && parse(lines.answer, g)) return g;
  g = vit_view_geometry(ssl::vit<>(ssl::vit_options::tiny4(), ssl::rng(seed)), pairs);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %llu %.17g %.17g %.17g %.17g", detail::vit_geometry_cache_tag,
                (unsigned long long)seed, g.cls.alignment, g.cls.uniformity, g.mean.alignment, g.mean.uniformity);
  detail::write_cache(cache, lines.kept, buf);
  return g;
}

/// Prints "<name> [CLS]: alignment A, uniformity U  (random init A0, U0; lower is better)" and the same
/// for mean-pooled, the labels padded as in report_vit_scores.
inline void report_vit_geometry(const char* name, const vit_geometry& g, const vit_geometry& base) {
  const std::string cls = std::string(name) + " [CLS]:", mean = std::string(name) + " mean-pooled:";
  const int width = int(std::max<size_t>(26, mean.size() + 2));
  auto line = [&](const std::string& label, const ssl::eval::alignment_uniformity_result& r,
                  const ssl::eval::alignment_uniformity_result& b) {
    std::printf("%-*s alignment %.3f, uniformity %.3f  (random init %.3f, %.3f; lower is better)\n", width,
                label.c_str(), r.alignment, r.uniformity, b.alignment, b.uniformity);
  };
  line(cls, g.cls, base.cls);
  line(mean, g.mean, base.mean);
}

/// Alignment and uniformity of the trained ViT on test_view_pairs(test) (the ConvNet-S examples' and
/// ssl_train's pairs) beside the random-init ViT-T/4's of `seed` (random_init_vit_geometry, cached in
/// `cache` when given), printed by report_vit_geometry.
inline void report_vit_alignment_uniformity(const char* name, const ssl::vit<>& enc,
                                            const ssl::data::in_memory_dataset& test, uint64_t seed,
                                            const std::string& cache) {
  const ssl::eval::view_pairs pairs = test_view_pairs(test);
  report_vit_geometry(name, vit_view_geometry(enc, pairs), random_init_vit_geometry(pairs, seed, cache));
}

/// The command-line settings of the ViT masked-image-modelling examples.
struct vit_train_settings {
  double minutes = 5;  // wall-clock training budget (augmentation included)
  int64_t epochs = 100;
  int64_t batch = 256;
  int64_t warmup = 100;  // linear warm-up steps
  float lr = 1e-3f;      // AdamW lr after warm-up
  float weight_decay = 0.05f;
  float clip_grad = 0.0f;  // > 0: clip the global gradient norm to this
  bool cosine = false;  // after warm-up: cosine decay to 0 at `epochs` (the MAE paper) instead of constant (Q4)
  uint64_t seed = 0;  // weights, data order, augmentations and masks
  int workers = 2;    // loader threads
  int threads = 2;    // compute threads (all ranks together)
  int ranks = 1;      // > 1: data-parallel thread ranks sharing each batch (dist::data_parallel)
  bool sync_bn = false;  // with ranks > 1: BatchNorm statistics over every rank's rows (SyncBatchNorm)
  bool probe = false;
  std::string csv, checkpoint, resume, baseline_cache;
  std::string data_dir = ssl::data::fashion_mnist_dir();
};

/// Registers the options the ViT examples share (everything in vit_train_settings).
inline void add_vit_train_options(CLI::App& app, vit_train_settings& s) {
  app.add_option("--minutes", s.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", s.epochs, "upper bound on epochs");
  app.add_option("--batch", s.batch, "images per step");
  app.add_option("--lr", s.lr, "AdamW learning rate after warm-up");
  app.add_option("--warmup", s.warmup, "linear warm-up steps");
  app.add_option("--weight-decay", s.weight_decay, "AdamW weight decay (all parameters)");
  app.add_option("--clip-grad", s.clip_grad, "clip the global gradient norm to this (0: off)");
  app.add_flag("--cosine", s.cosine,
               "after warm-up decay the lr as a cosine reaching 0 at --epochs (set --epochs to what the budget holds)");
  app.add_option("--seed", s.seed, "seed of weights, data order, augmentations and masks");
  app.add_option("--workers", s.workers, "loader threads");
  app.add_option("--threads", s.threads, "compute threads (all ranks together)");
  app.add_option("--ranks", s.ranks,
                 "data-parallel thread ranks sharing each --batch; each replica draws its rows of the global batch's masks")
      ->check(CLI::PositiveNumber);
  app.add_option("--data", s.data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", s.csv, "per-step CSV log");
  app.add_option("--checkpoint", s.checkpoint, "checkpoint file (safetensors), written at the end");
  app.add_option("--resume", s.resume,
                 "start from this checkpoint (same method and options); one whose run reached --epochs trains no "
                 "further, so its encoder is evaluated (and fine-tuned) as it is");
  app.add_flag("--linear-probe", s.probe, "also fit linear probes (L-BFGS, a few minutes each)");
  app.add_option("--baseline-cache", s.baseline_cache,
                 "file caching the random-init ViT-T/4 scores (keyed by seed and with/without probe) and its "
                 "alignment / uniformity (keyed by seed)");
}

/// Trains `method` on `data` seen through `views` with AdamW (betas 0.9 / 0.95, weight decay on all
/// parameters), lr rising linearly from 0 over `warmup` steps then constant (or, with `cosine`,
/// lr * (1 + cos(pi p)) / 2 with p the progress from the warm-up's end to `epochs`), a shuffling loader that
/// drops the last partial batch, and the budget of `s`; prints "trained N steps ... final loss X".
/// `groups`: AdamW parameter groups (e.g. no weight decay on some parameters); s.clip_grad > 0 clips
/// the global gradient norm.
/// With s.ranks > 1, s.ranks thread ranks each train a copy of `method` on their share of every
/// batch (dist::data_parallel; rank 0 logs and checkpoints), and `method` becomes rank 0's replica.
template <class M, class V>
ssl::train_summary train_with_adamw(M& method, const ssl::data::in_memory_dataset& data, V views,
                                    const vit_train_settings& s, const std::vector<ssl::param_group>& groups = {}) {
  int64_t steps_per_epoch = 1;
  // one replica's run: the whole batch (world_size 1) or its share of it
  auto train_replica = [&](auto& trained, int rank, int world_size) {
    ssl::param_list<ssl::cpu> params;
    trained.collect(params, "");
    ssl::adamw opt(params, {.lr = s.lr, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = s.weight_decay}, groups);
    auto loader = replica_loader(data, views, s.batch, s.workers, s.seed, rank, world_size);  // example_support.hpp
    ssl::trainer_options to;
    to.epochs = s.epochs;
    to.budget_seconds = s.minutes * 60;
    to.clip_grad_norm = s.clip_grad;
    const int64_t warmup = std::min(s.warmup, s.epochs * loader.steps_per_epoch());
    to.lr = s.cosine ? ssl::warmup_cosine_schedule{.base = s.lr, .final_value = 0.0f, .warmup_steps = warmup}
                     : ssl::linear_warmup(0.0f, s.lr, warmup);
    to.progress = rank == 0;
    if (rank == 0) {  // the replicas are identical: rank 0 writes
      to.csv_log = s.csv;
      to.checkpoint_path = s.checkpoint;
    }
    to.resume_from = s.resume;
    if (rank == 0) steps_per_epoch = loader.steps_per_epoch();
    return ssl::train(trained, opt, loader, to);
  };
  ssl::train_summary sum;
  if (s.ranks <= 1) {
    sum = train_replica(method, 0, 1);
  } else {
    sum = train_on_ranks(method, s.ranks, s.threads, s.batch, train_replica, s.sync_bn);  // example_support.hpp
  }
  if (sum.epochs_started == 0) {  // resumed from a finished run
    std::printf("resumed at step %lld (%.2f epochs): nothing left to train\n", (long long)sum.steps,
                double(sum.steps) / double(steps_per_epoch));
    return sum;
  }
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.0f img/s, final loss %.4f\n", (long long)sum.steps,
              double(sum.steps) / double(steps_per_epoch), sum.seconds, sum.images_per_second, sum.mean_loss_last_100);
  return sum;
}

/// Supervised fine-tuning of a pre-trained ViT-T/4 (eval::fine_tune): MAE's ViT-B recipe (AdamW,
/// layer-wise lr decay, drop path 0.1, label smoothing 0.1, cosine after a 5% warm-up, global average
/// pooling) scaled to a 6-block ViT (layer decay 0.75 instead of 0.65), with fine_tune_crop_flip(28),
/// on a class-balanced fraction of the train labels (eval::class_balanced_subset), tested on all
/// test images.
struct vit_fine_tune_settings {
  int64_t epochs = 0;         // epochs over the labelled subset; 0: no fine-tuning
  double labels = 1.0;        // fraction of the train labels kept per class (0.01, 0.1: semi-supervised)
  int64_t batch = 128;
  float lr = 1e-3f;           // head lr; encoder layer l of L: lr * layer_decay^(L - 1 - l)
  float layer_decay = 0.75f;  // 1: every layer at lr
  float drop_path = 0.1f;     // stochastic depth of the last block (rising linearly over the blocks)
  float label_smoothing = 0.1f;
  std::string pool = "mean";  // feature fed to the new linear head: "mean" (MAE) or "cls"
  bool decay_tokens = false;  // weight-decay cls_token / pos_embed too (MAE's fine-tuning does not)
  float mixup = 0.0f;         // mixup alpha (MAE's fine-tuning: 0.8; 0: off)
  float cutmix = 0.0f;        // cutmix alpha (MAE: 1.0; 0: off)
  float reprob = 0.0f;        // random-erasing probability (MAE: 0.25; 0: off)
  int64_t seed = -1;          // seed of the labelled subset, head, batches and random init (< 0: the run's seed)
};

inline void add_vit_fine_tune_options(CLI::App& app, vit_fine_tune_settings& f) {
  app.add_option("--fine-tune-epochs", f.epochs,
                 "then fine-tune the trained and the random-init ViT for this many epochs over the labelled train images (0: off)");
  app.add_option("--fine-tune-labels", f.labels,
                 "fraction of the train labels to fine-tune on, class-balanced (e.g. 0.1 or 0.01)");
  app.add_option("--fine-tune-batch", f.batch, "fine-tuning batch size");
  app.add_option("--fine-tune-lr", f.lr, "fine-tuning AdamW lr of the head (the encoder's layers decay from it)");
  app.add_option("--layer-decay", f.layer_decay, "fine-tuning layer-wise lr decay (1: none)");
  app.add_option("--fine-tune-drop-path", f.drop_path, "fine-tuning stochastic-depth rate of the last block");
  app.add_option("--fine-tune-smoothing", f.label_smoothing, "fine-tuning label smoothing");
  app.add_flag("--fine-tune-decay-tokens", f.decay_tokens,
               "fine-tuning weight-decays the ViT's cls_token / pos_embed / registers too (default: exempt, as MAE)");
  app.add_option("--fine-tune-mixup", f.mixup, "fine-tuning mixup alpha (MAE: 0.8; 0: off)");
  app.add_option("--fine-tune-cutmix", f.cutmix, "fine-tuning cutmix alpha (MAE: 1.0; 0: off)");
  app.add_option("--fine-tune-reprob", f.reprob, "fine-tuning random-erasing probability (MAE: 0.25; 0: off)");
  app.add_option("--fine-tune-seed", f.seed,
                 "seed of the fine-tuning (labelled subset, head, batch order, random-init ViT); default: --seed");
  app.add_option("--fine-tune-pool", f.pool, "feature of the fine-tuned head: mean or cls")->check(CLI::IsMember({"mean", "cls"}));
}

/// A ViT-T/4 backbone read from a safetensors file of its parameters (dino_fashion_mnist --save-teacher).
/// DINOv2's optional parts are read off the file: register_tokens (1, R, D), blocks.*.ls*.gamma
/// (LayerScale), mask_token (iBOT) and blocks.*.mlp.w12 (SwiGLU); every parameter must be there with its shape.
inline ssl::vit<> load_vit_backbone(const std::string& path, uint64_t seed) {
  const auto content = ssl::load_safetensors(path);
  ssl::vit_options vo = ssl::vit_options::tiny4();
  for (const auto& [n, t] : content.tensors) {
    if (n == "register_tokens" && t.rank() == 3) vo.registers = t.dim(1);
    if (n == "blocks.0.ls1.gamma") vo.layer_scale = 1e-5f;  // any positive init: the values are loaded
    if (n == "mask_token") vo.mask_token = true;
    if (n == "blocks.0.mlp.w12.weight") vo.ffn = ssl::ffn_kind::swiglu;
  }
  ssl::vit<> backbone(vo, ssl::rng(seed));
  for (auto& r : ssl::parameters(backbone)) {
    const ssl::tensor<ssl::cpu>& t = content.at(r.name);
    ssl::expect_shape(t, r.p->value.shape(), ("checkpoint tensor " + r.name).c_str());
    r.p->value = t;
  }
  return backbone;
}

/// Test top-1 of a copy of `enc` fine-tuned on `labelled` with the settings `f`.
inline double fine_tune_vit(const ssl::vit<>& enc, const ssl::eval::labelled_subset& labelled,
                            const ssl::data::in_memory_dataset& test, const vit_fine_tune_settings& f, uint64_t seed) {
  ssl::vit<> copy = enc;
  copy.set_pool(f.pool == "cls" ? ssl::vit_pool::cls : ssl::vit_pool::mean);
  ssl::eval::fine_tune_options o;
  o.epochs = f.epochs;
  o.batch_size = f.batch;
  o.lr = f.lr;
  o.backbone_lr_scale = 1.0f;
  o.layer_decay = f.layer_decay;
  o.drop_path = f.drop_path;
  o.label_smoothing = f.label_smoothing;
  o.decay_tokens = f.decay_tokens;
  o.mixup_alpha = f.mixup;
  o.cutmix_alpha = f.cutmix;
  o.num_classes = 10;
  o.augmentation = ssl::eval::fine_tune_crop_flip(int(test.height()), 0.5f, f.reprob);
  o.seed = seed;
  const auto r = ssl::eval::fine_tune(std::move(copy), labelled.images, labelled.labels, test.images(), test.labels(), o);
  std::printf("  fine-tuned %lld steps (%.1f epochs) in %.0f s, last-epoch train loss %.3f, train top-1 %.2f%%\n",
              (long long)r.report.steps, r.report.epochs, r.report.seconds, r.report.train_loss,
              100 * r.report.train_accuracy);
  return r.report.test_accuracy;
}

namespace detail {
// One fine-tuning cache line: "vit-t4-finetune <seed> <registers> <layer_scale> <labels> <epochs> <batch> <lr>
// <layer_decay> <drop_path> <smoothing> <pool> <decay_tokens> <mixup> <cutmix> <reprob>[ swiglu] <accuracy>", kept
// beside the other lines of the cache.
inline constexpr const char* vit_fine_tune_cache_tag = "vit-t4-finetune";
inline std::string vit_fine_tune_key(const ssl::vit_options& arch, const vit_fine_tune_settings& f, uint64_t seed) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %llu %lld %.9g %.9g %lld %lld %.9g %.9g %.9g %.9g %s %d %.9g %.9g %.9g",
                vit_fine_tune_cache_tag, (unsigned long long)seed, (long long)arch.registers, double(arch.layer_scale),
                f.labels, (long long)f.epochs, (long long)f.batch, double(f.lr), double(f.layer_decay),
                double(f.drop_path), double(f.label_smoothing), f.pool.c_str(), int(f.decay_tokens), double(f.mixup),
                double(f.cutmix), double(f.reprob));
  return std::string(buf) + (arch.ffn == ssl::ffn_kind::swiglu ? " swiglu" : "");
}
}  // namespace detail

/// Fine-tunes `trained` and the random-init ViT of its architecture (vit<>(trained.options(), rng(seed))) with
/// the settings `f` and prints
///   "fine-tune (P% labels, n images, E epochs, layer decay D, drop path R, <pool>): <name> X%  (random init Y%, +Z points)".
/// The random-init accuracy is read from `cache` when it holds a line with the same key, otherwise
/// measured and added there. Nothing happens when f.epochs is 0. f.seed >= 0 replaces `run_seed`.
inline void report_vit_fine_tune(const char* name, const ssl::vit<>& trained, const ssl::data::in_memory_dataset& train, const ssl::data::in_memory_dataset& test,
                                 const vit_fine_tune_settings& f, uint64_t run_seed, const std::string& cache) {
  if (f.epochs <= 0) return;
  const uint64_t seed = f.seed >= 0 ? uint64_t(f.seed) : run_seed;
  const ssl::eval::labelled_subset labelled =
      ssl::eval::class_balanced_subset(train.images(), train.labels(), f.labels, seed);
  std::printf("fine-tuning %s on %lld labelled images (%.4g of each class, seed %llu)\n", name,
              (long long)labelled.labels.size(), f.labels, (unsigned long long)seed);
  const double acc = fine_tune_vit(trained, labelled, test, f, seed);

  const ssl::vit_options& arch = trained.options();
  const std::string key = detail::vit_fine_tune_key(arch, f, seed);
  const detail::cache_lines lines = detail::read_cache(cache, [&](const std::string& line) {
    return line.rfind(key + " ", 0) == 0 ? detail::cache_verdict::take : detail::cache_verdict::keep;
  });
  double base = 0;
  if (!lines.answer.empty()) {
    base = std::stod(lines.answer.substr(key.size() + 1));
  } else {
    std::printf("fine-tuning the random-init ViT the same way\n");
    base = fine_tune_vit(ssl::vit<>(arch, ssl::rng(seed)), labelled, test, f, seed);
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.6f", base);
    detail::write_cache(cache, lines.kept, key + buf);
  }
  char extra[128] = "";  // the regularisers beyond the defaults
  if (f.mixup > 0 || f.cutmix > 0 || f.reprob > 0)
    std::snprintf(extra, sizeof extra, ", mixup %.3g, cutmix %.3g, reprob %.3g", double(f.mixup), double(f.cutmix),
                  double(f.reprob));
  std::printf("fine-tune (%.4g%% labels, %lld images, %lld epochs, layer decay %.3g, drop path %.3g%s%s, %s): %s "
              "%.2f%%  (random init %.2f%%, %+.2f points)\n",
              100 * f.labels, (long long)labelled.labels.size(), (long long)f.epochs, double(f.layer_decay),
              double(f.drop_path), extra, f.decay_tokens ? ", tokens decayed" : "", f.pool.c_str(), name, 100 * acc,
              100 * base, 100 * (acc - base));
}

}  // namespace ssl_example
