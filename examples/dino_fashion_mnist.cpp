// DINO on Fashion-MNIST, with ConvNet-S or ViT-T/4 as the backbone.
//
// Trains student = backbone + DINO head (W3 sizes: hidden 512, bottleneck 128, out 4096), teacher =
// EMA copy, on multi-crop views (2 global 28x28 crops scale (0.4, 1), n local 12x12 crops scale
// (0.05, 0.4), DINO's colour / blur / solarize policy, Fashion-MNIST normalisation) without labels,
// for a wall-clock budget. AdamW lr 5e-4 B / 256 with a linear warm-up, wd 0.04, the last layer
// frozen for the first steps. Then reports k-NN (k = 20, T = 0.07) accuracy on the test images for
// the student's and the teacher's backbone (DINO evaluates the teacher) beside the same backbone at
// its random initialisation (ConvNet-S: BN recalibrated on the train images, for every network).
//
//   dino_fashion_mnist --encoder convnet --minutes 4
//   dino_fashion_mnist --encoder vit --minutes 4 --save-teacher dino_vit.safetensors
//   dino_fashion_mnist --encoder vit --dinov2 --minutes 15      (KoLeo, Sinkhorn-Knopp, iBOT)
//   dino_fashion_mnist --encoder vit --dinov2 --registers 4 --layer-scale 1e-5   (+ DINOv2's ViT parts)
//   dino_fashion_mnist --encoder vit --dinov2 --swiglu --minutes 15   (blocks with DINOv2 ViT-g's SwiGLU feed-forward)
//   dino_fashion_mnist --encoder vit --dinov2 --max-steps 700 --fine-tune-epochs 50 --fine-tune-labels 0.01
//       --fine-tune-batch 64 --fine-tune-pool cls     (then fine-tunes the teacher and the random init on 1% of the labels)
//   dino_fashion_mnist --fine-tune-from dino_vit.safetensors --fine-tune-epochs 50 --fine-tune-labels 0.01
//       (no pre-training: fine-tunes a teacher written by --save-teacher)
//   dino_fashion_mnist --encoder convnet --ranks 2 --sync-bn --batch 128   (data-parallel: 2 thread ranks of 64
//       images, the center over the global batch, SyncBN; with --sinkhorn / --dinov2 the distributed
//       Sinkhorn-Knopp, and each rank's iBOT masks its images of the global batch's draw)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/dist.hpp>
#include <ssl/nn/copy_state.hpp>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"

using namespace ssl;

namespace {

struct eval_sets {
  data::in_memory_dataset train, test;
};

data::in_memory_dataset first_n(const data::in_memory_dataset& d, int64_t n) {
  n = std::min(n, d.size());
  if (n == d.size()) return d;
  tensor<cpu> imgs = methods_detail::rows(d.images(), 0, n);
  std::vector<int> labels(d.labels().begin(), d.labels().begin() + n);
  return data::in_memory_dataset(std::move(imgs), std::move(labels), 10);
}

struct scores {
  double knn = 0, linear = -1;  // linear: -1 when not measured
};

template <class E>
scores evaluate(E& enc, const eval_sets& s, bool probe) {
  const auto norm = eval::fashion_mnist_normalization();
  if constexpr (requires { enc.for_each_batch_norm([](auto&) {}); })
    eval::recalibrate_batch_norm(enc, s.train.images(), norm);
  const tensor<cpu> ftr = eval::extract_features(enc, s.train.images(), norm, 500);
  const tensor<cpu> fte = eval::extract_features(enc, s.test.images(), norm, 500);
  scores out;
  out.knn = eval::knn_classify(ftr, s.train.labels(), fte, s.test.labels()).accuracy;
  if (probe) out.linear = eval::linear_probe(ftr, s.train.labels(), fte, s.test.labels()).test_accuracy;
  return out;
}

/// "k-NN A%  (random init B%, +C points)[, linear probe D% (random init E%)]"
void print_scores(const char* what, const scores& s, const scores& base) {
  std::printf("%s: k-NN %.2f%%  (random init %.2f%%, %+.2f points)", what, 100 * s.knn, 100 * base.knn,
              100 * (s.knn - base.knn));
  if (s.linear >= 0)
    std::printf(", linear probe %.2f%% (random init %.2f%%, %+.2f points)", 100 * s.linear, 100 * base.linear,
                100 * (s.linear - base.linear));
  std::printf("\n");
}

struct run_options {
  double minutes = 4;
  int64_t epochs = 100, batch = 64, warmup = 100, freeze_steps = 100, out_dim = 4096;
  int n_local = 4;
  float lr = 0, weight_decay = 0.04f, teacher_temp = 0.04f, momentum = 0.996f, koleo = 0.0f, clip = 3.0f;
  float ibot = 0.0f;       // iBOT masked-patch loss weight (ViT only; DINOv2: 1.0)
  bool sinkhorn = false;   // Sinkhorn-Knopp teacher targets instead of centering (DINOv2)
  int64_t max_steps = 0;   // step limit (0: none); with it the schedules' horizon is min(max_steps, epochs)
  int64_t registers = 0;   // ViT register tokens (Darcet et al. 2024; DINOv2 "_reg" models: 4)
  float layer_scale = 0;   // ViT LayerScale init (DINOv2: 1e-5); 0: none
  bool swiglu = false;     // ViT blocks with DINOv2's SwiGLU feed-forward instead of the GELU MLP
  uint64_t seed = 0;
  int workers = 2, threads = 2;
  int ranks = 1;         // > 1: data-parallel over this many thread ranks sharing --batch
  bool sync_bn = false;  // with ranks > 1 and a BN backbone: SyncBatchNorm
  bool probe = false;  // also a linear probe (multinomial logistic regression on frozen features)
  std::string csv, save_teacher;
  ssl_example::vit_fine_tune_settings fine_tune;  // ViT only: fine-tune the teacher (and the random init) after
  std::string fine_tune_cache;                    // caches the random-init fine-tuning accuracy
};

/// What a training run leaves for the report: the student and teacher backbones (copies of rank 0's
/// under data parallelism) and the last step's diagnostics.
template <class E>
struct dino_run {
  explicit dino_run(const E& backbone) : student(backbone), teacher(backbone) {}
  E student, teacher;
  train_summary sum;
  int64_t steps_per_epoch = 1, last_hidden = 0;
  float collapse_reference = 0, last_ibot = 0;
  std::string collapse_message;
};

/// Trains DINO from `backbone` on this rank's share of every global batch of o.batch images; one
/// process when C is dist::single_process, else one of o.ranks data-parallel replicas.
template <class E, class C>
void train_dino(E backbone, const data::in_memory_dataset& train, const run_options& o, C& comm, dino_run<E>& out) {
  constexpr bool ranks = !std::same_as<C, dist::single_process>;
  if constexpr (ranks && HasBatchNorms<E>)
    if (o.sync_bn) dist::sync_batch_norm(backbone, comm);  // before composing: the teacher copy shares it
  const int64_t F = backbone.feature_dim();
  dino_method<E> method(std::move(backbone),
                        dino_head<>({.in_dim = F, .hidden_dim = 512, .bottleneck_dim = 128, .out_dim = o.out_dim},
                                    rng(o.seed).fork(7)),
                        {.teacher_temperature_start = o.teacher_temp, .teacher_temperature = o.teacher_temp,
                         .momentum_base = o.momentum, .freeze_last_layer_steps = o.freeze_steps,
                         .koleo_weight = o.koleo,
                         .centering = o.sinkhorn ? dino_centering::sinkhorn_knopp : dino_centering::center,
                         .ibot_weight = o.ibot, .seed = o.seed});
  if constexpr (ranks)
    if (o.sinkhorn) dist::sync_sinkhorn_knopp(method, comm);
  param_list<cpu> params;
  method.collect(params, "");
  const float lr = o.lr > 0 ? o.lr : 5e-4f * float(o.batch) / 256.0f;  // of the global batch
  adamw opt(params, {.lr = lr, .weight_decay = o.weight_decay}, {no_decay_on_bias_and_norm()});
  data::loader loader(train, augment::dino_views(28, 12, o.n_local, augment::fashion_mnist_normalize()),
                      {.batch_size = o.batch / comm.world_size(), .shuffle = true, .drop_last = true,
                       .num_workers = o.workers, .seed = o.seed, .rank = comm.rank(), .world_size = comm.world_size()});
  trainer_options to;
  to.epochs = o.epochs;
  to.budget_seconds = o.minutes * 60;
  to.max_steps = o.max_steps;
  const int64_t horizon = o.epochs * loader.steps_per_epoch();
  to.lr = linear_warmup(0.0f, lr, std::min(o.warmup, o.max_steps > 0 ? std::min(o.max_steps, horizon) : horizon));
  to.clip_grad_norm = o.clip;
  const bool lead = comm.rank() == 0;
  to.progress = lead;
  if (lead) to.csv_log = o.csv;
  train_summary sum;
  if constexpr (ranks) {
    dist::data_parallel dp(method, comm);  // rank 0's weights broadcast; gradients averaged; center over all ranks
    sum = ssl::train(dp, opt, loader, to);
    const float spread = dist::max_replica_difference(method, comm);
    if (lead) std::printf("%d ranks x %lld images; replicas differ by %g\n", comm.world_size(),
                          (long long)(o.batch / comm.world_size()), double(spread));
    sum.images_per_second *= double(comm.world_size());
  } else {
    sum = ssl::train(method, opt, loader, to);
  }
  if (!lead) return;
  copy_state(method.encoder(), out.student);  // weights and BN statistics (not the rank synchronisation)
  copy_state(method.teacher_encoder(), out.teacher);
  out.sum = sum;
  out.steps_per_epoch = loader.steps_per_epoch();
  out.collapse_reference = method.collapse_reference();
  out.collapse_message = method.collapse_check().message;
  out.last_ibot = method.last_ibot_loss();
  out.last_hidden = method.last_hidden_patches();
}

template <class E>
void run(const char* name, E student_backbone, E random_backbone, const data::in_memory_dataset& train,
         const eval_sets& sets, const run_options& o) {
  const scores base = evaluate(random_backbone, sets, o.probe);
  std::printf("random-init %s: k-NN %.2f%%", name, 100 * base.knn);
  if (o.probe) std::printf(", linear probe %.2f%%", 100 * base.linear);
  std::printf("\n");

  dino_run<E> r(student_backbone);  // the architecture; the trained weights are copied in
  if (o.ranks > 1) {
    dist::thread_group(o.ranks, std::max(1, o.threads / o.ranks)).run([&](dist::thread_communicator& comm) {
      train_dino(E(student_backbone), train, o, comm, r);
    });
  } else {
    dist::single_process one;
    train_dino(std::move(student_backbone), train, o, one, r);
  }
  const train_summary& sum = r.sum;
  std::printf("trained %lld steps (%.2f epochs) in %.0f s, %.1f img/s, final loss %.4f (ln K = %.4f; %s)\n",
              (long long)sum.steps, double(sum.steps) / double(r.steps_per_epoch), sum.seconds, sum.images_per_second,
              sum.mean_loss_last_100, r.collapse_reference, r.collapse_message.c_str());

  const scores student = evaluate(r.student, sets, o.probe);
  const scores teacher = evaluate(r.teacher, sets, o.probe);
  // "DINO " alone, "DINOv2 " with all three additions, else "DINO + <the additions used> "
  std::string additions;
  const std::pair<bool, const char*> parts[] = {{o.koleo > 0, "KoLeo"}, {o.sinkhorn, "Sinkhorn-Knopp"}, {o.ibot > 0, "iBOT"}};
  for (const auto& [on, what] : parts)
    if (on) additions += (additions.empty() ? " + " : ", ") + std::string(what);
  const bool all_three = o.koleo > 0 && o.sinkhorn && o.ibot > 0;
  const std::string method_name = all_three ? "DINOv2 " : "DINO" + additions + " ";
  if (o.ibot > 0)
    std::printf("iBOT: last step %.4f over %lld hidden patches\n", r.last_ibot, (long long)r.last_hidden);
  print_scores((method_name + name + " student").c_str(), student, base);
  print_scores((method_name + name + " teacher").c_str(), teacher, base);
  if constexpr (std::same_as<E, vit<>>) {  // alignment / uniformity of [CLS] and mean-pooled features
    const eval::view_pairs pairs = ssl_example::test_view_pairs(sets.test);
    const ssl_example::vit_geometry random_geometry = ssl_example::vit_view_geometry(random_backbone, pairs);
    ssl_example::report_vit_geometry((method_name + name + " student").c_str(),
                                     ssl_example::vit_view_geometry(r.student, pairs), random_geometry);
    ssl_example::report_vit_geometry((method_name + name + " teacher").c_str(),
                                     ssl_example::vit_view_geometry(r.teacher, pairs), random_geometry);
    ssl_example::report_vit_fine_tune((method_name + name + " teacher").c_str(), r.teacher, train,
                                      sets.test, o.fine_tune, o.seed, o.fine_tune_cache);
  } else {  // ConvNet-S: the 256-d backbone features, BN recalibrated by evaluate above
    const eval::view_pairs pairs = ssl_example::test_view_pairs(sets.test);
    const auto base_geometry = ssl_example::view_geometry(random_backbone, pairs);
    auto report = [&](const char* who, const E& enc) {
      const auto g = ssl_example::view_geometry(enc, pairs);
      std::printf("%s%s %s: alignment %.3f, uniformity %.3f  (random init %.3f, %.3f; lower is better)\n",
                  method_name.c_str(), name, who, g.alignment, g.uniformity, base_geometry.alignment,
                  base_geometry.uniformity);
    };
    report("student", r.student);
    report("teacher", r.teacher);
  }
  if (!o.save_teacher.empty()) {
    named_tensors t;
    for (auto& p : parameters(r.teacher)) t.emplace_back(p.name, p.p->value);
    save_safetensors(o.save_teacher, t, {{"model", name}});
    std::printf("teacher backbone written to %s\n", o.save_teacher.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DINO on Fashion-MNIST: train without labels, report k-NN accuracy vs random init"};
  run_options o;
  std::string encoder = "convnet", data_dir = data::fashion_mnist_dir();
  int64_t eval_train = 60000, eval_test = 10000;
  int threads = 2;
  app.add_option("--encoder", encoder, "backbone: convnet (ConvNet-S) or vit (ViT-T/4)")->check(CLI::IsMember({"convnet", "vit"}));
  app.add_option("--minutes", o.minutes, "wall-clock training budget (augmentation included)");
  app.add_option("--epochs", o.epochs, "upper bound on epochs (also the horizon of the EMA cosine)");
  app.add_option("--max-steps", o.max_steps, "stop after this many steps (then also the EMA cosine's horizon): "
                                             "a run independent of the machine's load");
  app.add_option("--batch", o.batch, "images per step (2 global + n local crops each)");
  app.add_option("--local-crops", o.n_local, "local 12x12 crops per image");
  app.add_option("--lr", o.lr, "AdamW learning rate after warm-up (default 5e-4 * batch / 256)");
  app.add_option("--warmup", o.warmup, "linear learning-rate warm-up steps");
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (not on biases / norms)");
  app.add_option("--teacher-temp", o.teacher_temp, "teacher temperature");
  app.add_option("--momentum", o.momentum, "teacher EMA momentum at step 0 (cosine to 1)");
  app.add_option("--freeze-last-layer", o.freeze_steps, "steps with the head's last layer frozen");
  app.add_option("--out-dim", o.out_dim, "DINO head output dimension K");
  app.add_option("--koleo", o.koleo, "KoLeo weight on the student's global-crop features (DINOv2: 0.1)");
  app.add_option("--clip", o.clip, "global gradient-norm clip (0 = off)");
  app.add_option("--ibot", o.ibot, "iBOT masked-patch loss weight (ViT only; DINOv2: 1.0)");
  app.add_flag("--sinkhorn", o.sinkhorn, "Sinkhorn-Knopp teacher targets instead of centering (DINOv2)");
  app.add_option("--registers", o.registers, "ViT register tokens after [CLS] (DINOv2 with registers: 4)")
      ->check(CLI::Range(0, 64));
  app.add_option("--layer-scale", o.layer_scale, "ViT LayerScale init of every block branch (DINOv2: 1e-5; 0: off)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--swiglu", o.swiglu, "ViT blocks with DINOv2's SwiGLU feed-forward (its ViT-g) instead of the GELU MLP");
  bool dinov2 = false;
  app.add_flag("--dinov2", dinov2, "DINOv2's additions: --koleo 0.1 --sinkhorn, and --ibot 1 with --encoder vit");
  app.add_option("--seed", o.seed, "seed of weights, data order and augmentations");
  app.add_option("--workers", o.workers, "loader threads");
  app.add_option("--threads", threads, "compute threads (all ranks together)");
  app.add_option("--ranks", o.ranks, "data-parallel thread ranks sharing each --batch (the global batch)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--sync-bn", o.sync_bn, "with --ranks and --encoder convnet: SyncBatchNorm (statistics of the global batch)");
  app.add_option("--eval-train", eval_train, "train images used as k-NN memory");
  app.add_option("--eval-test", eval_test, "test images classified");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--csv", o.csv, "per-step CSV log");
  app.add_flag("--linear-probe", o.probe, "also report linear-probe accuracy (student, teacher, random init)");
  app.add_option("--save-teacher", o.save_teacher, "write the teacher backbone (safetensors), e.g. for dino_attention");
  ssl_example::add_vit_fine_tune_options(app, o.fine_tune);
  app.add_option("--fine-tune-cache", o.fine_tune_cache, "file caching the random-init ViT's fine-tuning accuracy");
  std::string fine_tune_from;
  app.add_option("--fine-tune-from", fine_tune_from,
                 "skip pre-training: fine-tune the ViT teacher backbone in this file (from --save-teacher) and the random init");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  o.threads = threads;
  if (!fine_tune_from.empty()) encoder = "vit";  // --save-teacher writes ViT backbones only for fine-tuning
  if (o.fine_tune.epochs > 0 && encoder != "vit") {
    std::fprintf(stderr, "--fine-tune-epochs needs --encoder vit (ConvNet-S methods: ssl_train --fine-tune-epochs)\n");
    return 2;
  }
  if (dinov2) {
    if (app.count("--koleo") == 0) o.koleo = 0.1f;
    if (app.count("--ibot") == 0 && encoder == "vit") o.ibot = 1.0f;
    o.sinkhorn = true;
  }
  if (o.ibot > 0 && encoder != "vit") {
    std::fprintf(stderr, "--ibot needs --encoder vit (a token encoder with a mask token)\n");
    return 2;
  }
  if (o.batch % o.ranks != 0 || (o.sync_bn && (o.ranks < 2 || encoder != "convnet"))) {
    std::fprintf(stderr, "--batch must be a multiple of --ranks; --sync-bn needs --ranks >= 2 and --encoder convnet\n");
    return 2;
  }
  if ((o.registers > 0 || o.layer_scale > 0 || o.swiglu) && encoder != "vit") {
    std::fprintf(stderr, "--registers, --layer-scale and --swiglu need --encoder vit\n");
    return 2;
  }

  const auto train = data::load_fashion_mnist(data::split::train, data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  if (!fine_tune_from.empty()) {  // one pre-training (--save-teacher), several fine-tunings
    if (o.fine_tune.epochs <= 0) {
      std::fprintf(stderr, "--fine-tune-from needs --fine-tune-epochs > 0\n");
      return 2;
    }
    try {
      const vit<> teacher = ssl_example::load_vit_backbone(fine_tune_from, o.seed);
      std::printf("loaded the ViT teacher backbone from %s\n", fine_tune_from.c_str());
      ssl_example::report_vit_fine_tune(("teacher of " + fine_tune_from).c_str(), teacher, train, test, o.fine_tune,
                                        o.seed, o.fine_tune_cache);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  const eval_sets sets{first_n(train, eval_train), first_n(test, eval_test)};
  std::printf("Fashion-MNIST: %lld train, %lld test images (k-NN on %lld / %lld)\n", (long long)train.size(),
              (long long)test.size(), (long long)sets.train.size(), (long long)sets.test.size());
  if (encoder == "convnet") {
    run("ConvNet-S", convnet_s<>(1, rng(o.seed)), convnet_s<>(1, rng(o.seed)), train, sets, o);
  } else {
    vit_options vo = vit_options::tiny4();
    vo.mask_token = o.ibot > 0;  // iBOT replaces hidden patches by a learned token
    vo.registers = o.registers;
    vo.layer_scale = o.layer_scale;
    if (o.swiglu) vo.ffn = ffn_kind::swiglu;
    std::string name = "ViT-T/4";
    if (o.registers > 0) name += " + " + std::to_string(o.registers) + " registers";
    if (o.layer_scale > 0) name += " + LayerScale";
    if (o.swiglu) name += " + SwiGLU";
    run(name.c_str(), vit<>(vo, rng(o.seed)), vit<>(vo, rng(o.seed)), train, sets, o);
  }
  return 0;
}
