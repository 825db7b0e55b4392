#pragma once
// Fine-tuning: supervised end-to-end training of a (pretrained) encoder plus a new linear head,
// then top-1 accuracy on the test images with the encoder in eval mode (infer, BN running stats).
//
//   auto r = eval::fine_tune(encoder, train_images, train_labels, test_images, test_labels, opts);
//   r.report.test_accuracy; r.encoder; r.head;      // the caller's `encoder` is copied, never changed
//
// Model:  logits = head(encoder(norm(x)))          x: (B, C, H, W) in [0, 1] -> features (B, F) -> (B, K)
//         head = linear(F -> K), PyTorch's default init, seeded.
// Loss:   cross-entropy (optional label smoothing), mean over the batch. With mixup_alpha or
//         cutmix_alpha > 0 (augment/mixup_cutmix.hpp, timm's Mixup as MAE fine-tunes: 0.8 / 1.0) the
//         normalised batch is mixed with its reverse and the loss is soft_cross_entropy against the
//         mixed smoothed one-hots; the batch's draw comes from rng(seed).fork(4).fork(step).
// Update: AdamW; head lr = lr, encoder lr = lr * backbone_lr_scale; weight decay on weights only
//         (biases, norm parameters and, unless decay_tokens, the encoder's no_weight_decay() list
//         get none: MAE's fine-tuning exempts a ViT's cls_token / pos_embed). backbone_lr_scale = 0 freezes the encoder: it then
//         runs in eval mode (infer, no backward), i.e. a linear head trained by AdamW on frozen features.
//         layer_decay < 1 (a LayeredEncoder: vit, convnet_s, resnet): layer-wise lr decay, an encoder
//         parameter at layer l of L gets lr * backbone_lr_scale * layer_decay^(L - 1 - l)
//         (optim/layer_decay.hpp; MAE fine-tunes ViT-B with 0.75 and backbone scale 1).
//         drop_path >= 0 (an encoder with set_drop_path: vit): stochastic depth while fine-tuning
//         (MAE: 0.1 for ViT-B); the test pass is in eval mode and drops nothing.
// Few labels: fine-tune on eval::class_balanced_subset(...) of the train set (label_subset.hpp).
// Schedule (per step t, run progress p = max(t / planned_steps, elapsed / budget_seconds) in [0, 1]):
//         warm-up  lr(p) = base * p / w                        for p < w = warmup_fraction
//         cosine   lr(p) = base * (1 + cos(pi (p - w) / (1 - w))) / 2      (or constant: base)
//         planned_steps = epochs * steps_per_epoch; with a wall-clock budget the schedule follows
//         whichever runs out first, so it still anneals to 0 when time, not epochs, ends the run.
// Batches: each epoch visits a permutation of the train set drawn from rng(seed).fork(2).fork(epoch),
//         floor(N / batch) full batches (one batch of N when N < batch); sample i of epoch e is augmented
//         with rng(seed).fork(3).fork(e).fork(i). Without a time budget the whole run is a pure function
//         of (encoder, data, options): same seed, same result (for a fixed thread count).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "../augment/cutout.hpp"
#include "../augment/horizontal_flip.hpp"
#include "../augment/mixup_cutmix.hpp"
#include "../augment/random_resized_crop.hpp"
#include "../losses/cross_entropy.hpp"
#include "../losses/soft_cross_entropy.hpp"
#include "../nn/linear.hpp"
#include "../optim/adamw.hpp"
#include "../optim/layer_decay.hpp"
#include "features.hpp"
#include "labels.hpp"

namespace ssl::eval {

/// Per-image train-time augmentation: (C, H, W) in [0, 1] -> (C, H', W') in [0, 1], before the
/// input normalisation (so it must not normalise itself). Any ssl::Augmentation fits, e.g.
/// fine_tune_crop_flip(28). It should keep the image size when the encoder needs a fixed one (MLP, ViT).
using fine_tune_augmentation = std::function<tensor<cpu>(const tensor<cpu>&, rng&)>;

enum class fine_tune_schedule { cosine, constant };

/// Defaults for Fashion-MNIST-sized problems (28x28 grey, 10 classes, ConvNet-S / ResNet-18).
struct fine_tune_options {
  int64_t epochs = 10;               // upper bound on epochs
  double budget_seconds = 0;         // wall-clock limit of the training loop (0: none); checked before each step
  int64_t batch_size = 256;
  float lr = 1e-3f;                  // AdamW base lr of the head
  float backbone_lr_scale = 0.1f;    // encoder lr = lr * backbone_lr_scale (0 freezes the encoder)
  float layer_decay = 1.0f;          // < 1: layer-wise lr decay over the encoder's layers (LayeredEncoder)
  float drop_path = -1.0f;           // >= 0: the encoder's stochastic-depth rate while fine-tuning (vit); < 0 keeps it
  float weight_decay = 0.05f;        // AdamW decoupled decay of weights (not biases / norms)
  bool decay_tokens = false;         // false (MAE): the encoder's no_weight_decay() weights (a ViT's cls_token,
                                     // pos_embed, ...) get no weight decay; true: decayed like the other weights
  fine_tune_schedule schedule = fine_tune_schedule::cosine;
  double warmup_fraction = 0.05;     // linear warm-up over this fraction of the run
  float label_smoothing = 0.0f;
  float mixup_alpha = 0.0f;          // > 0: mixup, lam ~ Beta(a, a) per batch (MAE's fine-tuning: 0.8)
  float cutmix_alpha = 0.0f;         // > 0: cutmix (MAE: 1.0); with both > 0 a batch gets one of them (p 0.5 each)
  float mix_prob = 1.0f;             // probability that a batch is mixed (when an alpha is > 0)
  int num_classes = 0;               // 0: 1 + the largest train label
  input_normalization norm = fashion_mnist_normalization();
  fine_tune_augmentation augmentation{};  // empty: none
  uint64_t seed = 0;                 // head init, batch order, augmentation
  int64_t eval_batch = 1000;         // test images per infer call
};

struct fine_tune_report {
  double train_loss = 0;       // mean batch loss over the steps of the last (possibly partial) epoch
  double train_accuracy = 0;   // top-1 on those batches, train mode, as augmented, against each image's own
                               // label (with mixup / cutmix: of the mixed image) (in [0, 1])
  double test_accuracy = 0;    // top-1 on the test images, eval mode (in [0, 1])
  int64_t steps = 0;           // optimizer steps taken
  double epochs = 0;           // steps / steps_per_epoch
  double seconds = 0;          // wall-clock time of training and testing
};

/// The fine-tuned model and its report.
template <class E>
struct fine_tune_result {
  fine_tune_report report;
  E encoder;
  linear<cpu> head;
};

/// Random resized crop back to (size, size) with area scale (scale_lo, 1), then a horizontal flip
/// with p 0.5: a mild fine-tuning augmentation for small grey images. erase_prob > 0 then adds
/// random erasing with a per-pixel noise fill (augment::cutout::random_erasing; MAE's reprob 0.25).
inline fine_tune_augmentation fine_tune_crop_flip(int size, float scale_lo = 0.5f, float erase_prob = 0.0f) {
  augment::random_resized_crop crop;
  crop.size_h = crop.size_w = size;
  crop.scale_lo = scale_lo;
  crop.scale_hi = 1.0f;
  check<value_error>(erase_prob >= 0.0f && erase_prob <= 1.0f, "fine_tune_crop_flip: expected erase_prob in [0, 1], got ",
                     erase_prob);
  if (erase_prob == 0.0f)
    return [crop, flip = augment::horizontal_flip{0.5f}](const tensor<cpu>& img, rng& g) { return flip(crop(img, g), g); };
  return [crop, flip = augment::horizontal_flip{0.5f}, erase = augment::cutout::random_erasing(erase_prob)](
             const tensor<cpu>& img, rng& g) { return erase(flip(crop(img, g), g), g); };
}

namespace detail {

/// lr factor at run progress p in [0, 1] (see the header comment).
inline double fine_tune_lr_factor(double p, double warmup, fine_tune_schedule s) {
  if (p < warmup) return p / warmup;
  if (s == fine_tune_schedule::constant || warmup >= 1.0) return 1.0;
  return 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(1.0, (p - warmup) / (1.0 - warmup))));
}

/// Rows `idx` of images (N, C, H, W), augmented (when `aug` is set) and normalised: (B, C, H', W').
inline tensor<cpu> fine_tune_batch(const tensor<cpu>& images, std::span<const int64_t> idx, const input_normalization& norm,
                                   const fine_tune_augmentation& aug, const rng& epoch_stream) {
  const int64_t B = int64_t(idx.size()), C = images.dim(1), HW = images.dim(2) * images.dim(3);
  if (!aug) {
    tensor<cpu> x(shape{B, C, images.dim(2), images.dim(3)});
    parallel_for(0, B * C, [&](int64_t bc) {
      const int64_t b = bc / C, c = bc % C;
      const float m = norm.mean[size_t(c)], inv = 1.0f / norm.std[size_t(c)];
      const float* src = images.data() + (idx[size_t(b)] * C + c) * HW;
      float* dst = x.data() + bc * HW;
      for (int64_t i = 0; i < HW; ++i) dst[i] = (src[i] - m) * inv;
    });
    return x;
  }
  std::vector<tensor<cpu>> views(static_cast<size_t>(B));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(B));
  parallel_for(0, B, [&](int64_t b) {
    try {
      const int64_t i = idx[size_t(b)];
      tensor<cpu> img(shape{C, images.dim(2), images.dim(3)});
      std::copy_n(images.data() + i * C * HW, C * HW, img.data());
      rng g = epoch_stream.fork(uint64_t(i));
      views[size_t(b)] = aug(img, g);
    } catch (...) {
      errors[size_t(b)] = std::current_exception();
    }
  });
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  const shape vs = views[0].shape();
  check<shape_error>(vs.rank() == 3 && vs[0] == C, "fine_tune augmentation: expected a (", C,
                     ", H, W) image, got shape ", vs);
  for (const auto& v : views)
    check<shape_error>(v.shape() == vs, "fine_tune augmentation: views of one batch must share a shape, got ", vs,
                       " and ", v.shape());
  tensor<cpu> x(shape{B, C, vs[1], vs[2]});
  const int64_t vhw = vs[1] * vs[2];
  parallel_for(0, B * C, [&](int64_t bc) {
    const int64_t b = bc / C, c = bc % C;
    const float m = norm.mean[size_t(c)], inv = 1.0f / norm.std[size_t(c)];
    const float* src = views[size_t(b)].data() + c * vhw;
    float* dst = x.data() + bc * vhw;
    for (int64_t i = 0; i < vhw; ++i) dst[i] = (src[i] - m) * inv;
  });
  return x;
}

/// Index of the largest entry of each row of z: (N, K) (first maximum wins ties).
inline void argmax_rows(const tensor<cpu>& z, std::vector<int>& out, int64_t offset) {
  const int64_t n = z.dim(0), k = z.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = z.data() + i * k;
    out[size_t(offset + i)] = int(std::max_element(r, r + k) - r);
  }
}

}  // namespace detail

/// Fine-tunes a copy of `encoder` with a new linear head on (train_images, train_labels), then
/// measures top-1 on (test_images, test_labels). Images: (N, C, H, W) in [0, 1]; labels in [0, K).
template <Encoder E>
  requires std::same_as<typename E::backend_type, cpu>
fine_tune_result<E> fine_tune(E encoder, const tensor<cpu>& train_images, std::span<const int> train_labels,
                              const tensor<cpu>& test_images, std::span<const int> test_labels,
                              const fine_tune_options& o = {}) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };

  // ---- input checks
  check<shape_error>(train_images.rank() == 4, "fine_tune: expected train images (N, C, H, W), got shape ",
                     train_images.shape());
  check<shape_error>(test_images.rank() == 4, "fine_tune: expected test images (N, C, H, W), got shape ",
                     test_images.shape());
  const int64_t N = train_images.dim(0), M = test_images.dim(0), C = train_images.dim(1);
  check<shape_error>(N > 0, "fine_tune: expected at least one train image, got none");
  check<shape_error>(M > 0, "fine_tune: expected at least one test image, got none");
  check<shape_error>(test_images.dim(1) == C, "fine_tune: train images have ", C, " channels but test images have ",
                     test_images.dim(1));
  check<shape_error>(int64_t(train_labels.size()) == N, "fine_tune: expected ", N, " train labels (one per image), got ",
                     train_labels.size());
  check<shape_error>(int64_t(test_labels.size()) == M, "fine_tune: expected ", M, " test labels (one per image), got ",
                     test_labels.size());
  check<shape_error>(int64_t(o.norm.mean.size()) == C && int64_t(o.norm.std.size()) == C, "fine_tune: expected ", C,
                     " normalisation means and stds (one per channel), got ", o.norm.mean.size(), " and ",
                     o.norm.std.size());
  for (size_t c = 0; c < o.norm.std.size(); ++c)
    check(o.norm.std[c] > 0.0f, "fine_tune: expected normalisation stds > 0, got ", o.norm.std[c], " for channel ", c);
  check(o.epochs >= 1, "fine_tune: expected epochs >= 1, got ", o.epochs);
  check(o.budget_seconds >= 0, "fine_tune: expected budget_seconds >= 0, got ", o.budget_seconds);
  check(o.batch_size >= 1, "fine_tune: expected batch_size >= 1, got ", o.batch_size);
  check(o.eval_batch >= 1, "fine_tune: expected eval_batch >= 1, got ", o.eval_batch);
  check(o.lr > 0.0f, "fine_tune: expected lr > 0, got ", o.lr);
  check(o.backbone_lr_scale >= 0.0f, "fine_tune: expected backbone_lr_scale >= 0, got ", o.backbone_lr_scale);
  check(o.weight_decay >= 0.0f, "fine_tune: expected weight_decay >= 0, got ", o.weight_decay);
  check(o.layer_decay > 0.0f && o.layer_decay <= 1.0f, "fine_tune: expected layer_decay in (0, 1] (1: none), got ",
        o.layer_decay);
  if constexpr (!LayeredEncoder<E>)
    check(o.layer_decay == 1.0f, "fine_tune: layer_decay ", o.layer_decay, " needs an encoder with layer ids "
          "(layer_count / layer_of: vit, convnet_s, resnet); this one has none: use layer_decay 1");
  if constexpr (!requires(E& e) { e.set_drop_path(0.1f); })
    check(o.drop_path < 0.0f, "fine_tune: drop_path ", o.drop_path, " needs an encoder with stochastic depth "
          "(set_drop_path: vit); this one has none: use drop_path -1");
  check(o.mixup_alpha >= 0.0f && o.cutmix_alpha >= 0.0f, "fine_tune: expected mixup_alpha and cutmix_alpha >= 0 "
        "(0: off), got ", o.mixup_alpha, " and ", o.cutmix_alpha);
  check(o.mix_prob >= 0.0f && o.mix_prob <= 1.0f, "fine_tune: expected mix_prob in [0, 1], got ", o.mix_prob);
  check(o.warmup_fraction >= 0 && o.warmup_fraction < 1, "fine_tune: expected warmup_fraction in [0, 1), got ",
        o.warmup_fraction);
  const int K = o.num_classes > 0 ? o.num_classes : detail::max_label(train_labels, "fine_tune train labels") + 1;
  detail::check_labels(train_labels, K, "fine_tune train labels");
  detail::check_labels(test_labels, K, "fine_tune test labels");
  check(K >= 2, "fine_tune: expected at least 2 classes, got ", K);

  // ---- model and optimizer
  const rng base(o.seed);
  const int64_t F = encoder.feature_dim();
  check<shape_error>(F > 0, "fine_tune: expected an encoder with feature_dim > 0, got ", F);
  fine_tune_result<E> res{{}, std::move(encoder), linear<cpu>(F, K, true, base.fork(1))};
  E& enc = res.encoder;
  linear<cpu>& fc = res.head;
  const bool frozen = o.backbone_lr_scale == 0.0f;
  param_list<cpu> params;  // points into res: collected after the model has its final place
  if (!frozen) enc.collect(params, "encoder");
  fc.collect(params, "head");
  const auto in_encoder = [](const std::string& n) { return n.rfind("encoder.", 0) == 0; };
  const float s = o.backbone_lr_scale;
  // the encoder's weights that get no weight decay (a ViT's tokens and position table), "encoder."-prefixed
  const std::vector<std::string> exempt = o.decay_tokens ? std::vector<std::string>{} : no_weight_decay_names(enc);
  std::vector<param_group> groups;
  if constexpr (LayeredEncoder<E>)
    if (o.layer_decay < 1.0f) groups = layer_decay_groups(enc, "encoder", o.layer_decay, s, exempt);
  if (groups.empty()) {
    const auto decayed = [=](const std::string& n, param_kind k) {
      return in_encoder(n) && gets_weight_decay(n.substr(8), k, exempt);
    };
    groups = {{"encoder_weights", decayed, s, 1.0f},
              {"encoder_no_decay", [=](const std::string& n, param_kind) { return in_encoder(n); }, s, 0.0f}};
  }
  groups.push_back({"head_no_decay", [](const std::string&, param_kind k) { return k != param_kind::weight; }, 1.0f, 0.0f});
  adamw opt(params, {.lr = o.lr, .weight_decay = o.weight_decay}, std::move(groups));
  if constexpr (requires(E& e) { e.set_drop_path(0.1f); })
    if (o.drop_path >= 0.0f) enc.set_drop_path(o.drop_path);
  const cross_entropy criterion(o.label_smoothing);
  // mixup / cutmix: the smoothing goes into the mixed targets, the loss adds none
  const bool mixing = o.mixup_alpha > 0.0f || o.cutmix_alpha > 0.0f;
  const augment::mixup_cutmix mixer{.mixup_alpha = o.mixup_alpha, .cutmix_alpha = o.cutmix_alpha, .prob = o.mix_prob,
                                    .switch_prob = 0.5f, .label_smoothing = o.label_smoothing, .num_classes = K};
  const soft_cross_entropy soft_criterion(0.0f);

  // ---- training
  const int64_t B = std::min(o.batch_size, N), steps_per_epoch = N / B;
  const int64_t planned = o.epochs * steps_per_epoch;
  std::vector<int64_t> perm(static_cast<size_t>(N)), batch_labels(static_cast<size_t>(B));
  std::vector<int> pred(static_cast<size_t>(B));
  int64_t step = 0;
  bool out_of_time = false;
  double epoch_loss = 0;
  int64_t epoch_steps = 0, epoch_hits = 0;
  for (int64_t epoch = 0; epoch < o.epochs && !out_of_time; ++epoch) {
    // the epoch's order: a Fisher-Yates permutation from the epoch's stream
    for (int64_t i = 0; i < N; ++i) perm[size_t(i)] = i;
    rng order = base.fork(2).fork(uint64_t(epoch));
    for (size_t i = perm.size() - 1; i > 0; --i) std::swap(perm[i], perm[order.below(uint32_t(i + 1))]);
    const rng aug_stream = base.fork(3).fork(uint64_t(epoch));
    epoch_loss = 0;
    epoch_steps = epoch_hits = 0;
    for (int64_t sb = 0; sb < steps_per_epoch; ++sb) {
      const double t = elapsed();
      if (o.budget_seconds > 0 && step > 0 && t >= o.budget_seconds) {
        out_of_time = true;
        break;
      }
      double p = double(step) / double(planned);
      if (o.budget_seconds > 0) p = std::max(p, t / o.budget_seconds);
      opt.set_lr(o.lr * float(detail::fine_tune_lr_factor(std::min(p, 1.0), o.warmup_fraction, o.schedule)));

      const std::span<const int64_t> idx(perm.data() + sb * B, size_t(B));
      for (int64_t b = 0; b < B; ++b) batch_labels[size_t(b)] = train_labels[size_t(idx[size_t(b)])];
      tensor<cpu> x = detail::fine_tune_batch(train_images, idx, o.norm, o.augmentation, aug_stream);
      tensor<cpu> soft_targets;  // (B, K) when mixing
      if (mixing) {
        rng mix_stream = base.fork(4).fork(uint64_t(step));
        auto mixed = mixer(x, batch_labels, mix_stream);
        x = std::move(mixed.images);
        soft_targets = std::move(mixed.targets);
      }
      opt.zero_grad();
      // features (B, F) -> logits (B, K)
      auto run_encoder = [&]() -> output<typename E::saved_type, cpu> {
        if (frozen) return {enc.infer(x), {}};
        return enc.forward(x);
      };
      auto feats = run_encoder();
      check<shape_error>(feats.y.rank() == 2 && feats.y.dim(0) == B && feats.y.dim(1) == F, "fine_tune: expected encoder "
                         "features of shape (", B, ", ", F, "), got ", feats.y.shape());
      auto logits = fc.forward(std::move(feats.y));
      const cross_entropy_result ce = mixing ? soft_criterion(logits.y, soft_targets) : criterion(logits.y, batch_labels);
      check<numeric_error>(std::isfinite(ce.value), "fine_tune: expected a finite loss, got ", ce.value, " at step ",
                           step, " (lr ", opt.lr(), " too high?)");
      tensor<cpu> dfeat = fc.backward(logits.saved, ce.grad_logits);
      if (!frozen) (void)enc.backward(feats.saved, dfeat);
      opt.step();

      detail::argmax_rows(logits.y, pred, 0);
      for (int64_t b = 0; b < B; ++b) epoch_hits += pred[size_t(b)] == int(batch_labels[size_t(b)]);
      epoch_loss += ce.value;
      ++epoch_steps;
      ++step;
    }
  }

  // ---- report: last epoch's running numbers, test top-1 in eval mode
  fine_tune_report& r = res.report;
  r.steps = step;
  r.epochs = double(step) / double(steps_per_epoch);
  r.train_loss = epoch_steps > 0 ? epoch_loss / double(epoch_steps) : 0.0;
  r.train_accuracy = epoch_steps > 0 ? double(epoch_hits) / double(epoch_steps * B) : 0.0;
  std::vector<int> test_pred(static_cast<size_t>(M));
  for (int64_t b = 0; b < M; b += o.eval_batch) {
    const int64_t e = std::min(M, b + o.eval_batch);
    detail::argmax_rows(fc.infer(enc.infer(normalized_slice(test_images, b, e, o.norm))), test_pred, b);
  }
  r.test_accuracy = detail::accuracy(test_pred, test_labels);
  r.seconds = elapsed();
  return res;
}

/// Same, with labels given as std::vector<int> (the datasets' labels()).
template <Encoder E>
  requires std::same_as<typename E::backend_type, cpu>
fine_tune_result<E> fine_tune(E encoder, const tensor<cpu>& train_images, const std::vector<int>& train_labels,
                              const tensor<cpu>& test_images, const std::vector<int>& test_labels,
                              const fine_tune_options& o = {}) {
  return fine_tune(std::move(encoder), train_images, std::span<const int>(train_labels), test_images,
                   std::span<const int>(test_labels), o);
}

}  // namespace ssl::eval
