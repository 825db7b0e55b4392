#pragma once
// Batch-level mixup / cutmix with smoothed soft targets (timm's Mixup in "batch" mode, the
// recipe of DeiT's and MAE's fine-tuning). One lam per batch; row i's partner is row B-1-i
// (the batch flipped; with B odd the middle row is its own partner and stays as it is).
//   mixup:  x_i <- lam x_i + (1 - lam) x_{B-1-i},  lam ~ Beta(mixup_alpha, mixup_alpha)
//   cutmix: lam ~ Beta(cutmix_alpha, cutmix_alpha); a box of sides h = floor(sqrt(1 - lam) H),
//           w = floor(sqrt(1 - lam) W) centred at (cy, cx) uniform over the pixels, spanning
//           [cy - h/2, cy + h/2) x [cx - w/2, cx + w/2) (halves rounded down) clipped to the image,
//           takes the partner's pixels in every channel; lam <- 1 - box area / (H W).
//   targets (B, K): y_i = smoothed one-hot of label i (off = eps / K, on = 1 - eps + off),
//           t_i = lam y_i + (1 - lam) y_{B-1-i}  (rows sum to 1; train with soft_cross_entropy).
// A batch is mixed with probability `prob`; then, when both alphas are > 0, it is cutmix with
// probability `switch_prob`, else mixup. Unmixed batches (prob, or both alphas 0) keep their
// images, lam = 1 and the smoothed one-hot targets.
// Draw order on the rng: the `prob` uniform, the `switch_prob` uniform (both alphas > 0 only),
// the Beta draw, then (cutmix) the centre row and column.
#include <algorithm>
#include <cmath>
#include <span>

#include "augmentation.hpp"

namespace ssl::augment {

struct mixup_cutmix {
  float mixup_alpha = 0.8f;   // lam ~ Beta(a, a) for mixup; 0 disables mixup
  float cutmix_alpha = 1.0f;  // lam ~ Beta(a, a) for cutmix; 0 disables cutmix
  float prob = 1.0f;          // probability that a batch is mixed at all
  float switch_prob = 0.5f;   // when both are enabled: probability of cutmix instead of mixup
  float label_smoothing = 0.1f;
  int num_classes = 0;        // required (> 0)

  /// One batch's draw: lam, the kind of mixing and (cutmix) the box.
  struct params {
    float lam = 1.0f;
    bool mixed = false;   // the batch was chosen for mixing (lam may still come out 1)
    bool cutmix = false;  // cutmix rather than mixup
    int top = 0, left = 0, height = 0, width = 0;  // cutmix box (height = 0: empty)
  };
  struct result {
    tensor<cpu> images;   // (B, C, H, W)
    tensor<cpu> targets;  // (B, K)
    float lam = 1.0f;
    bool cutmix = false;
    bool mixed = false;
  };

  /// images: (B, C, H, W) (any value range: it mixes, it does not normalise).
  params draw(const tensor<cpu>& images, rng& g) const {
    check_settings();
    check_batch(images);
    params p;
    const bool mixup_on = mixup_alpha > 0.0f, cutmix_on = cutmix_alpha > 0.0f;
    if (!(mixup_on || cutmix_on) || !(g.uniform() < prob)) return p;
    p.mixed = true;
    p.cutmix = mixup_on && cutmix_on ? g.uniform() < switch_prob : cutmix_on;
    const float a = p.cutmix ? cutmix_alpha : mixup_alpha;
    const float lam = g.beta(a, a);
    if (!p.cutmix) {
      p.lam = lam;
      return p;
    }
    const int H = int(images.dim(2)), W = int(images.dim(3));
    const float side = std::sqrt(1.0f - lam);
    const int h = int(float(H) * side), w = int(float(W) * side);
    const int cy = int(g.below(uint32_t(H))), cx = int(g.below(uint32_t(W)));
    const int y0 = std::clamp(cy - h / 2, 0, H), y1 = std::clamp(cy + h / 2, 0, H);
    const int x0 = std::clamp(cx - w / 2, 0, W), x1 = std::clamp(cx + w / 2, 0, W);
    p.top = y0;
    p.left = x0;
    p.height = y1 - y0;
    p.width = x1 - x0;
    p.lam = 1.0f - float(int64_t(p.height) * p.width) / float(int64_t(H) * W);
    return p;
  }

  /// Mixes the batch as `p` says; labels: B class indices in [0, num_classes).
  result apply(const tensor<cpu>& images, std::span<const int64_t> labels, const params& p) const {
    check_settings();
    check_batch(images);
    const int64_t B = images.dim(0), C = images.dim(1), H = images.dim(2), W = images.dim(3);
    check<shape_error>(int64_t(labels.size()) == B, "mixup_cutmix labels: expected ", B, " labels (one an image), got ",
                       labels.size());
    check<value_error>(p.lam >= 0.0f && p.lam <= 1.0f, "mixup_cutmix: expected lam in [0, 1], got ", p.lam);
    check<value_error>(!p.cutmix || (p.top >= 0 && p.left >= 0 && p.height >= 0 && p.width >= 0 &&
                                     p.top + p.height <= H && p.left + p.width <= W),
                       "mixup_cutmix: expected a cutmix box inside the ", H, "x", W, " images, got top ", p.top,
                       " left ", p.left, " height ", p.height, " width ", p.width);
    result r{images, targets(labels, p.lam), p.lam, p.cutmix, p.mixed};
    if (!p.mixed || (!p.cutmix && p.lam == 1.0f)) return r;
    const int64_t plane = H * W, image = C * plane;
    const float* x = images.data();
    float* out = r.images.data();
    for (int64_t b = 0; b < B; ++b) {
      const float* mine = x + b * image;
      const float* partner = x + (B - 1 - b) * image;
      float* dst = out + b * image;
      if (p.cutmix) {
        for (int64_t c = 0; c < C; ++c)
          for (int64_t y = p.top; y < p.top + p.height; ++y) {
            const int64_t at = c * plane + y * W + p.left;
            std::copy_n(partner + at, p.width, dst + at);
          }
      } else {
        const float keep = p.lam, take = 1.0f - p.lam;
        for (int64_t k = 0; k < image; ++k) dst[k] = keep * mine[k] + take * partner[k];
      }
    }
    return r;
  }

  result operator()(const tensor<cpu>& images, std::span<const int64_t> labels, rng& g) const {
    return apply(images, labels, draw(images, g));
  }

  /// The soft targets (B, K): t_i = lam y_i + (1 - lam) y_{B-1-i}, y smoothed one-hots.
  tensor<cpu> targets(std::span<const int64_t> labels, float lam) const {
    check_settings();
    const int64_t B = int64_t(labels.size()), K = num_classes;
    check<shape_error>(B > 0, "mixup_cutmix labels: expected at least one label, got none");
    for (int64_t i = 0; i < B; ++i) {
      const int64_t y = labels[size_t(i)];
      check<value_error>(y >= 0 && y < K, "mixup_cutmix labels: expected a class in [0, ", K, "), got ", y, " at ", i);
    }
    const float off = label_smoothing / float(K), peak = 1.0f - label_smoothing;  // on - off
    tensor<cpu> t({B, K}, off);
    for (int64_t i = 0; i < B; ++i) {
      t.at(i, labels[size_t(i)]) += lam * peak;
      t.at(i, labels[size_t(B - 1 - i)]) += (1.0f - lam) * peak;
    }
    return t;
  }

 private:
  void check_settings() const {
    check<value_error>(num_classes > 0, "mixup_cutmix: expected num_classes > 0, got ", num_classes);
    check<value_error>(std::isfinite(mixup_alpha) && mixup_alpha >= 0.0f && std::isfinite(cutmix_alpha) &&
                           cutmix_alpha >= 0.0f,
                       "mixup_cutmix: expected finite alphas >= 0, got mixup_alpha ", mixup_alpha, ", cutmix_alpha ",
                       cutmix_alpha);
    check<value_error>(prob >= 0.0f && prob <= 1.0f, "mixup_cutmix prob: expected a value in [0, 1], got ", prob);
    check<value_error>(switch_prob >= 0.0f && switch_prob <= 1.0f,
                       "mixup_cutmix switch_prob: expected a value in [0, 1], got ", switch_prob);
    check<value_error>(label_smoothing >= 0.0f && label_smoothing <= 1.0f,
                       "mixup_cutmix label_smoothing: expected a value in [0, 1], got ", label_smoothing);
  }
  static void check_batch(const tensor<cpu>& images) {
    check<shape_error>(images.rank() == 4 && images.numel() > 0,
                       "mixup_cutmix: expected a non-empty batch of images (B, C, H, W), got shape ", images.shape());
  }
};

}  // namespace ssl::augment
