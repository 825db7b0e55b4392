// ssl_train: the command-line trainer. Picks a method and an encoder among a fixed set of
// compile-time instantiations, trains on an image folder or Fashion-MNIST without labels for a
// wall-clock budget, and prints k-NN accuracy, alignment / uniformity (Wang & Isola) and
// (optionally) linear-probe accuracy on the test split,
// beside the random-init encoder's. With --fine-tune MINUTES it then fine-tunes a copy of the
// trained encoder (and of the random-init one) end to end on the labelled train split with a linear head.
//
//   ssl_train --method simclr --encoder convnet_s --minutes 15 --linear-probe
//   ssl_train --method byol --encoder resnet18 --minutes 30 --checkpoint byol.safetensors
//   ssl_train --method moco_v2 --minutes 15 --linear-probe     (T 0.2, queue 4096, m 0.99, shuffle-BN 8 groups)
//   ssl_train --method simclr --minutes 15 --fine-tune 5        (AdamW, head lr 1e-3, encoder lr x0.1, cosine)
//   ssl_train --method simclr --epochs 4 --minutes 60 --fine-tune-epochs 3   (epoch-bounded: load-independent)
//   ssl_train --method simclr --epochs 4 --minutes 60 --fine-tune-epochs 30 --fine-tune-labels 0.01   (1% of the labels; --fine-tune-batch 64 suits 600 images)
//   ssl_train --method byol --ranks 2 --sync-bn --minutes 15   (data-parallel: 2 thread ranks of batch 128, SyncBN)
//   ssl_train --method barlow_twins --minutes 5 --linear-probe   (projector 1024-1024-1024, lambda 0.0051)
//   ssl_train --method nnclr --minutes 5 --linear-probe   (support set 8192, T 0.2, predictor)
// Methods: simclr, moco_v2, moco_v3, byol, simsiam, barlow_twins, vicreg, nnclr. Encoders: convnet_s, resnet18 (CIFAR stem).
// --ranks W splits each global batch of --batch images over W ranks (threads of this process,
// ssl::dist::data_parallel): SimCLR's and MoCo v3's negatives come from every rank, MoCo v2's queue
// takes every rank's keys and its key shuffle spans every rank, Barlow Twins' and VICReg's losses
// cover the global batch, NNCLR's loss and support set take every rank's rows, and --sync-bn gives BatchNorm the global batch's statistics.
// The other methods (DINO, MAE, MaskFeat, rotation, jigsaw, colorization, triplet) have their
// own example programs with method-specific flags.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/dist.hpp>
#include <ssl/nn/copy_state.hpp>
#include <ssl/ssl.hpp>

using namespace ssl;

struct run_config {
  double minutes = 5;
  int64_t epochs = 1000, batch = 256;
  float lr = 1e-3f, temperature = 0.5f, momentum = 0.99f;
  int64_t queue = 4096, bn_groups = 8;
  int64_t proj_dim = 1024;      // Barlow Twins / VICReg projector width (hidden and output)
  float bt_lambda = 0.0051f;    // Barlow Twins' off-diagonal weight
  std::string key_bn = "shuffled_groups";
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  int ranks = 1;         // > 1: data-parallel over this many thread ranks (--batch is the global batch)
  bool sync_bn = false;  // with ranks > 1: SyncBatchNorm
  bool probe = false;
  double fine_tune_minutes = 0;     // 0: no fine-tuning
  int fine_tune_epochs = 0;         // > 0: fine-tune for this many epochs (no time limit) instead
  float fine_tune_backbone = 0.1f;  // encoder lr multiplier while fine-tuning
  double fine_tune_labels = 1.0;    // class-balanced fraction of the train labels to fine-tune on
  int64_t fine_tune_batch = 256;
  float fine_tune_layer_decay = 1.0f;  // layer-wise lr decay over ConvNet-S's 4 stages (1: none)
  bool fine_tune_augment = false;   // random resized crop (0.5, 1) + flip while fine-tuning
  float fine_tune_reprob = 0.0f;    // and random erasing with this probability (implies the crop + flip)
  float fine_tune_mixup = 0.0f, fine_tune_cutmix = 0.0f;  // mixing alphas (0: off)
  std::string csv, checkpoint, resume;
};

struct scores {
  double knn = 0, linear = -1;
  eval::alignment_uniformity_result geometry;  // of two Q3 views of every test image
};

/// What every encoder is evaluated on: the train split (k-NN memory bank, probe and fine-tuning
/// data), the test split, and two views of every test image under the training augmentation (Q3),
/// drawn once with a fixed seed so the trained and the random-init encoder see the same pairs.
struct eval_data {
  const data::in_memory_dataset& train;
  const data::in_memory_dataset& test;
  eval::view_pairs test_views;  // (10000, 1, 28, 28) each for Fashion-MNIST
};

template <class E>
scores evaluate(const E& enc, const eval_data& d, bool probe) {
  const auto norm = eval::fashion_mnist_normalization();
  const tensor<cpu> ftr = eval::extract_features(enc, d.train.images(), norm);
  const tensor<cpu> fte = eval::extract_features(enc, d.test.images(), norm);
  scores s;
  s.knn = eval::knn_classify(ftr, d.train.labels(), fte, d.test.labels()).accuracy;
  if (probe) s.linear = eval::linear_probe(ftr, d.train.labels(), fte, d.test.labels()).test_accuracy;
  // Wang & Isola on the frozen features of the two views of every test image
  s.geometry = eval::alignment_uniformity(eval::features_of(enc, d.test_views.x), eval::features_of(enc, d.test_views.y));
  const auto collapse = eval::embedding_collapse(ftr);
  if (collapse.collapsed) std::printf("warning: %s\n", collapse.message.c_str());
  return s;
}

/// Test top-1 after fine-tuning a copy of `enc` for c.fine_tune_epochs epochs or else
/// c.fine_tune_minutes (eval/fine_tune.hpp defaults otherwise).
template <class E>
double fine_tune_accuracy(const E& enc, const eval_data& d, const run_config& c) {
  eval::fine_tune_options o;
  o.epochs = c.fine_tune_epochs > 0 ? c.fine_tune_epochs : 1000;
  o.budget_seconds = c.fine_tune_epochs > 0 ? 0.0 : c.fine_tune_minutes * 60;
  o.backbone_lr_scale = c.fine_tune_backbone;
  o.layer_decay = c.fine_tune_layer_decay;
  o.batch_size = c.fine_tune_batch;
  o.mixup_alpha = c.fine_tune_mixup;
  o.cutmix_alpha = c.fine_tune_cutmix;
  if (c.fine_tune_augment || c.fine_tune_reprob > 0)
    o.augmentation = eval::fine_tune_crop_flip(int(d.train.height()), 0.5f, c.fine_tune_reprob);
  o.seed = c.seed;
  const eval::labelled_subset labelled = eval::class_balanced_subset(d.train.images(), d.train.labels(), c.fine_tune_labels, c.seed);
  return eval::fine_tune(enc, labelled.images, labelled.labels, d.test.images(), d.test.labels(), o).report.test_accuracy;
}

trainer_options trainer_of(const run_config& c) {
  trainer_options to;
  to.epochs = c.epochs;
  to.budget_seconds = c.minutes * 60;
  to.csv_log = c.csv;
  to.checkpoint_path = c.checkpoint;
  to.checkpoint_every = c.checkpoint.empty() ? 0 : 500;
  to.resume_from = c.resume;
  return to;
}

auto make_loader(const eval_data& d, const run_config& c, int rank = 0, int world_size = 1) {
  return data::loader(d.train, augment::fashion_mnist_simclr(int(d.train.height())),
                      {.batch_size = c.batch / world_size, .shuffle = true, .drop_last = true, .num_workers = c.workers,
                       .seed = c.seed, .rank = rank, .world_size = world_size});
}

/// Training summary, then the trained encoder's scores beside the random-init encoder's.
template <class E>
int report(const std::string& name, const train_summary& sum, int64_t steps_per_epoch, const E& trained,
           const eval_data& d, const scores& base, const E& random_enc, const run_config& c) {
  std::printf("%s: %lld steps (%.2f epochs) in %.0f s, %.0f img/s, loss %.4f\n", name.c_str(), (long long)sum.steps,
              double(sum.steps) / double(steps_per_epoch), sum.seconds, sum.images_per_second, sum.mean_loss_last_100);
  const scores s = evaluate(trained, d, c.probe);
  std::printf("k-NN:         %s %.2f%%   random init %.2f%%   (%+.2f points)\n", name.c_str(), 100 * s.knn, 100 * base.knn,
              100 * (s.knn - base.knn));
  if (c.probe)
    std::printf("linear probe: %s %.2f%%   random init %.2f%%   (%+.2f points)\n", name.c_str(), 100 * s.linear,
                100 * base.linear, 100 * (s.linear - base.linear));
  std::printf("alignment / uniformity (%lld test pairs, lower is better): %s %.3f / %.3f   random init %.3f / %.3f\n",
              (long long)d.test.size(), name.c_str(), s.geometry.alignment, s.geometry.uniformity, base.geometry.alignment,
              base.geometry.uniformity);
  if (c.fine_tune_minutes > 0 || c.fine_tune_epochs > 0) {
    const double ft = fine_tune_accuracy(trained, d, c);
    const double ft_random = fine_tune_accuracy(random_enc, d, c);
    std::printf("fine-tune (%.4g%% labels): %s %.2f%% (random init %.2f%%)   (%+.2f points)\n", 100 * c.fine_tune_labels,
                name.c_str(), 100 * ft, 100 * ft_random, 100 * (ft - ft_random));
  }
  return 0;
}

/// One process: trains `method` on the whole batch.
template <class M, class E>
int train_and_report(M& method, const eval_data& d, const scores& base, const E& random_enc, const run_config& c,
                     const std::string& name) {
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = c.lr, .weight_decay = 0.0f});
  auto loader = make_loader(d, c);
  const train_summary sum = ssl::train(method, opt, loader, trainer_of(c));
  return report(name, sum, loader.steps_per_epoch(), method.encoder(), d, base, random_enc, c);
}

static moco_key_bn parse_key_bn(const std::string& s) {
  if (s == "shuffled_groups") return moco_key_bn::shuffled_groups;
  if (s == "batch") return moco_key_bn::batch;
  if (s == "running") return moco_key_bn::running;
  throw value_error("unknown --key-bn '" + s + "' (expected shuffled_groups, batch or running)");
}

/// Builds method `name` with encoder type E and hands it to f(method, label). With a communicator of
/// several ranks (C other than dist::single_process) the contrastive losses take their negatives from
/// every rank's batch, and with c.sync_bn every BatchNorm of the encoder and heads is synchronised
/// (before composing, so the key / target copies share it).
template <class E, class C, class F>
int with_method(E make_encoder(uint64_t), int64_t feat, const std::string& method, const run_config& c, C& comm, F&& f) {
  constexpr bool ranks = !std::same_as<C, dist::single_process>;
  const rng g(c.seed);
  auto synced = [&](auto module) {
    if constexpr (ranks)
      if (c.sync_bn) dist::sync_batch_norm(module, comm);
    return module;
  };
  auto encoder = [&] { return synced(make_encoder(c.seed)); };
  auto mlp = [&](int64_t in, int64_t hidden, uint64_t stream, bool bn = true) {
    return synced(projection_mlp<>({.in_dim = in, .hidden_dim = hidden, .out_dim = 128, .batch_norm = bn}, g.fork(stream)));
  };
  if (method == "simclr") {
    if constexpr (ranks) {
      simclr m(encoder(), mlp(feat, 256, 1), dist::global_nt_xent<C>(comm, c.temperature));
      return f(m, "SimCLR");
    } else {
      simclr m(encoder(), mlp(feat, 256, 1), nt_xent(c.temperature));
      return f(m, "SimCLR");
    }
  }
  if (method == "moco_v2") {
    // MoCo v2 normalises the keys with Shuffle-BN; over several ranks the keys are shuffled over the
    // global batch and the --bn-groups groups are split among the ranks (the run of one process with
    // those groups); its queue takes every rank's keys
    check<value_error>(!c.sync_bn, "--sync-bn applies to simclr, moco_v3, byol, simsiam, barlow_twins, vicreg and nnclr; moco_v2 uses "
                                   "Shuffle-BN (--key-bn)");
    const int W = comm.world_size();
    check<value_error>(c.bn_groups % W == 0, "--bn-groups (", c.bn_groups, ") must be a multiple of --ranks (", W,
                       "): each rank normalises bn_groups / ranks groups of the shuffled global batch");
    moco_v2_method m(encoder(), mlp(feat, 256, 1, /*bn=*/false),
                     {.queue_size = c.queue,
                      .momentum = c.momentum,
                      .key_bn = parse_key_bn(c.key_bn),
                      .bn_groups = c.bn_groups / W,
                      .seed = c.seed},
                     moco(c.temperature));
    return f(m, "MoCo v2");
  }
  if (method == "moco_v3") {
    if constexpr (ranks) {
      moco_v3_method m(encoder(), mlp(feat, 512, 1), mlp(128, 512, 2), {.momentum_base = c.momentum},
                       dist::global_moco_v3<C>(comm, c.temperature));
      return f(m, "MoCo v3");
    } else {
      moco_v3_method m(encoder(), mlp(feat, 512, 1), mlp(128, 512, 2), {.momentum_base = c.momentum}, moco_v3(c.temperature));
      return f(m, "MoCo v3");
    }
  }
  if (method == "byol") {
    byol_method m(encoder(), mlp(feat, 512, 1), mlp(128, 512, 2), {.tau_base = c.momentum});
    return f(m, "BYOL");
  }
  if (method == "simsiam") {
    simsiam_method<E, projection_mlp<>> m(encoder(), mlp(feat, 512, 1), mlp(128, 512, 2));
    return f(m, "SimSiam");
  }
  if (method == "nnclr") {  // SimCLR's projector and BYOL's predictor; neighbours from a support set of --queue rows
    nnclr_method<E, projection_mlp<>> m(encoder(), mlp(feat, 512, 1), mlp(128, 512, 2),
                                        {.support_size = c.queue, .temperature = c.temperature});
    return f(m, "NNCLR");
  }
  if (method == "barlow_twins" || method == "vicreg") {
    // projector: 3 layers, BN + ReLU after the first two, a plain linear last (both papers' 8192-8192-8192, narrower)
    auto projector = synced(projection_mlp<>(
        {.in_dim = feat, .hidden_dim = c.proj_dim, .out_dim = c.proj_dim, .layers = 3, .batch_norm = true}, g.fork(1)));
    if (method == "barlow_twins") {
      barlow_twins_method<E, projection_mlp<>> m(encoder(), std::move(projector), barlow_twins(c.bt_lambda));
      return f(m, "Barlow Twins");
    }
    vicreg_method<E, projection_mlp<>> m(encoder(), std::move(projector));
    return f(m, "VICReg");
  }
  throw value_error("unknown method '" + method +
                    "' (expected simclr, moco_v2, moco_v3, byol, simsiam, barlow_twins, vicreg or nnclr)");
}

/// c.ranks thread ranks, each training a replica on its c.batch / c.ranks images of every global
/// batch (dist::data_parallel); rank 0 logs and checkpoints, and its encoder is reported.
template <class E>
int train_ranks_and_report(E make_encoder(uint64_t), int64_t feat, const std::string& method, const eval_data& d,
                           const scores& base, const E& random_enc, const run_config& c) {
  check<value_error>(c.batch % c.ranks == 0, "--batch (", c.batch, ") must be a multiple of --ranks (", c.ranks,
                     "): each rank trains on batch / ranks images");
  E trained = make_encoder(c.seed);
  std::string name;
  train_summary sum;
  int64_t steps_per_epoch = 1;
  dist::thread_group(c.ranks, std::max(1, c.threads / c.ranks)).run([&](dist::thread_communicator& comm) {
    with_method(make_encoder, feat, method, c, comm, [&](auto& m, const char* label) {
      dist::data_parallel dp(m, comm);
      param_list<cpu> params;
      dp.collect(params, "");
      adamw opt(params, {.lr = c.lr, .weight_decay = 0.0f});
      auto loader = make_loader(d, c, comm.rank(), comm.world_size());
      trainer_options to = trainer_of(c);
      const bool lead = comm.rank() == 0;
      to.progress = lead;
      if (!lead) {  // the replicas are identical: rank 0 writes the log and the checkpoints
        to.csv_log.clear();
        to.checkpoint_path.clear();
        to.checkpoint_every = 0;
      }
      const train_summary s = ssl::train(dp, opt, loader, to);
      const float spread = dist::max_replica_difference(m, comm);
      if (lead) {
        sum = s;
        sum.images_per_second *= double(comm.world_size());  // every rank's images
        steps_per_epoch = loader.steps_per_epoch();
        name = std::string(label) + " (" + std::to_string(comm.world_size()) + " ranks" + (c.sync_bn ? ", SyncBN" : "") + ")";
        std::printf("replicas differ by %g after training\n", double(spread));
        copy_state(m.encoder(), trained);  // weights and BN statistics, without the rank synchronisation
      }
      return 0;
    });
  });
  return report(name, sum, steps_per_epoch, trained, d, base, random_enc, c);
}

template <class E>
int run_with(E make_encoder(uint64_t), int64_t feat, const std::string& method, const eval_data& d, const run_config& c) {
  E random_enc = make_encoder(c.seed);
  eval::recalibrate_batch_norm(random_enc, d.train.images(), eval::fashion_mnist_normalization());
  const scores base = evaluate(random_enc, d, c.probe);
  if (c.ranks > 1) return train_ranks_and_report(make_encoder, feat, method, d, base, random_enc, c);
  check<value_error>(!c.sync_bn, "--sync-bn needs --ranks of 2 or more");
  dist::single_process one;
  return with_method(make_encoder, feat, method, c, one,
                     [&](auto& m, const char* label) { return train_and_report(m, d, base, random_enc, c, label); });
}

static convnet_s<> make_convnet(uint64_t seed) { return convnet_s<>(1, rng(seed)); }
static resnet<> make_resnet18(uint64_t seed) { return resnet18_cifar<cpu>(1, rng(seed)); }

int main(int argc, char** argv) {
  CLI::App app{"self-supervised training on Fashion-MNIST (or IDX files), k-NN / linear-probe evaluation"};
  run_config c;
  std::string method = "simclr", encoder = "convnet_s", data_dir = data::fashion_mnist_dir();
  int& threads = c.threads;
  app.add_option("--method", method, "simclr | moco_v2 | moco_v3 | byol | simsiam | barlow_twins | vicreg | nnclr");
  app.add_option("--encoder", encoder, "convnet_s | resnet18");
  app.add_option("--minutes", c.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", c.epochs, "upper bound on epochs");
  app.add_option("--batch", c.batch, "images per step");
  app.add_option("--lr", c.lr, "Adam learning rate");
  app.add_option("--temperature", c.temperature, "contrastive temperature (SimCLR, MoCo, NNCLR; default 0.5, 0.2 for moco_v2 and nnclr)");
  app.add_option("--momentum", c.momentum, "EMA momentum of the key/target network (MoCo, BYOL)");
  app.add_option("--queue", c.queue, "MoCo v2 queue size; NNCLR support-set size (default 4096, 8192 for nnclr)");
  app.add_option("--key-bn", c.key_bn, "MoCo v2 key-network BN: shuffled_groups (shuffle-BN) | batch | running");
  app.add_option("--proj-dim", c.proj_dim, "Barlow Twins / VICReg projector width (hidden and output)");
  app.add_option("--bt-lambda", c.bt_lambda, "Barlow Twins' weight of the off-diagonal cross-correlation terms");
  app.add_option("--bn-groups", c.bn_groups, "MoCo v2 BN groups of the query and key batches (1 = whole batch; with --ranks, of the global batch)");
  app.add_option("--seed", c.seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", c.workers, "loader threads");
  app.add_option("--threads", threads, "compute threads (all ranks together)");
  app.add_option("--ranks", c.ranks, "data-parallel thread ranks; each trains on batch / ranks images of every global batch")
      ->check(CLI::PositiveNumber);
  app.add_flag("--sync-bn", c.sync_bn, "with --ranks: SyncBatchNorm (statistics of the global batch)");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files (train-*/t10k-*)");
  app.add_option("--csv", c.csv, "per-step CSV log");
  app.add_option("--checkpoint", c.checkpoint, "checkpoint file (safetensors), every 500 steps and at the end");
  app.add_option("--resume", c.resume, "resume from this checkpoint");
  app.add_flag("--linear-probe", c.probe, "also fit linear probes (L-BFGS)");
  app.add_option("--fine-tune", c.fine_tune_minutes,
                 "minutes of supervised fine-tuning of the trained and of the random-init encoder (0 = off)");
  app.add_option("--fine-tune-epochs", c.fine_tune_epochs,
                 "fine-tune for this many epochs instead of --fine-tune minutes (the result then does not depend on the machine's speed)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fine-tune-backbone-lr", c.fine_tune_backbone, "encoder lr multiplier while fine-tuning (head lr 1e-3)");
  app.add_option("--fine-tune-labels", c.fine_tune_labels,
                 "fine-tune on this class-balanced fraction of the train labels (e.g. 0.01, 0.1; semi-supervised)");
  app.add_option("--fine-tune-batch", c.fine_tune_batch, "fine-tuning batch size");
  app.add_option("--fine-tune-layer-decay", c.fine_tune_layer_decay,
                 "layer-wise lr decay over the encoder's stages while fine-tuning (1: none)");
  app.add_flag("--fine-tune-augment", c.fine_tune_augment, "random resized crop (0.5, 1) + flip while fine-tuning");
  app.add_option("--fine-tune-reprob", c.fine_tune_reprob,
                 "random-erasing probability while fine-tuning (implies --fine-tune-augment; MAE: 0.25)");
  app.add_option("--fine-tune-mixup", c.fine_tune_mixup, "mixup alpha while fine-tuning (MAE: 0.8; 0: off)");
  app.add_option("--fine-tune-cutmix", c.fine_tune_cutmix, "cutmix alpha while fine-tuning (MAE: 1.0; 0: off)");
  CLI11_PARSE(app, argc, argv);
  if (app.count("--temperature") == 0 && method == "moco_v2") c.temperature = 0.2f;  // MoCo v2's T
  if (app.count("--temperature") == 0 && method == "nnclr") c.temperature = 0.2f;    // solo-learn's NNCLR T
  if (app.count("--queue") == 0 && method == "nnclr") c.queue = 8192;
  set_num_threads(threads);
  try {
    const auto train = data::load_fashion_mnist(data::split::train, data_dir);
    const auto test = data::load_fashion_mnist(data::split::test, data_dir);
    // the view pairs of alignment / uniformity: seed 12345, as in examples/example_support.hpp
    const eval_data d{train, test,
                      eval::draw_view_pairs(test.images(), augment::fashion_mnist_simclr(int(test.height())), test.size(),
                                            /*seed=*/12345)};
    if (encoder == "convnet_s") return run_with<convnet_s<>>(make_convnet, 256, method, d, c);
    if (encoder == "resnet18") return run_with<resnet<>>(make_resnet18, 512, method, d, c);
    throw value_error("unknown encoder '" + encoder + "' (expected convnet_s or resnet18)");
  } catch (const ssl::error& e) {
    std::fprintf(stderr, "ssl_train: %s\n", e.what());
    return 2;
  }
}
