#pragma once
// Colorization (Zhang, Isola & Efros 2016), at the level of a global feature vector: from the
// lightness of an RGB image, predict the colour of each cell of a coarse grid as a class over
// quantized ab bins (the paper predicts every pixel with a dense decoder; an encoder that ends in a
// global pool gives one vector, so here a linear head predicts G x G cells from it).
//   rgb = views[0]                  (B, 3, H, W), sRGB in [0, 1]
//   lab = rgb_to_lab(rgb)           L in [0, 100], a, b
//   x = (L / 100 - mean) / std      (B, 1, H, W)   the encoder's input
//   y[n, c] = nearest ab bin of the mean (a, b) over cell c (row-major G x G cells)
//   logits = head(enc(x))           (B, G G Q) -> viewed as (B G G, Q)
//   L = cross_entropy(logits, y)    (pass class weights to the loss for Zhang et al.'s rebalancing)
// Needs colour data. Fashion-MNIST is greyscale: examples/colorization_fashion_mnist.cpp builds
// tinted copies whose lightness is the original image (see docs/methods/colorization.md).
// The backend is the parts' backend tag: colorization_method<convnet_s<cuda>, projection_mlp<cuda>>
// runs the same step on the GPU (under nvcc); the batch is prepared on the host (see train_step).
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../losses/cross_entropy.hpp"
#include "../losses/loss.hpp"
#include "../pretext/colorization.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

struct colorization_options {
  int64_t grid = 4;                       // G: cells per side
  float input_mean = 0.2860f;             // normalisation of L / 100 (Fashion-MNIST statistics)
  float input_std = 0.3530f;
};

/// An encoder input and the cell colour classes of a batch.
struct colorization_batch {
  tensor<cpu> input;            // (B, 1, H, W) normalised lightness
  std::vector<int64_t> labels;  // B G G bin indices, image-major then row-major cells
};

template <class E, class H, class L = cross_entropy>
class colorization_method : public methods_detail::encoder_head_loss<E, H, L> {
  static_assert(Encoder<E>, "colorization_method<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "colorization_method<E, H, L>: H must satisfy ssl::Head (the G*G*Q cell-colour classifier)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "colorization_method<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, std::vector<int64_t>>,
                "colorization_method<E, H, L>: L must satisfy ssl::Loss on (logits (N, Q), labels N)");

  using parts = methods_detail::encoder_head_loss<E, H, L>;
  using parts::encoder_;
  using parts::head_;
  using parts::loss_;

 public:
  using backend_type = typename E::backend_type;

  colorization_method(E encoder, H head, colorization_options o = {},
                      pretext::ab_quantizer quantizer = pretext::ab_quantizer::from_gamut(32), L loss = L{})
      : parts(std::move(encoder), std::move(head), std::move(loss)), opt_(o),
        quantizer_(std::move(quantizer)) {
    check<value_error>(o.grid >= 1, "colorization: grid must be >= 1, got ", o.grid);
    check<value_error>(o.input_std > 0, "colorization: input_std must be > 0, got ", o.input_std);
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "colorization: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the head expects in_dim ", head_.in_dim());
    check<shape_error>(head_.out_dim() == classes_per_image(), "colorization: the head must give ", o.grid, "x",
                       o.grid, " cells x ", quantizer_.bins(), " ab bins = ", classes_per_image(),
                       " logits, got out_dim ", head_.out_dim());
  }

  /// G G Q: the head's output size.
  int64_t classes_per_image() const { return opt_.grid * opt_.grid * quantizer_.bins(); }

  /// rgb (B, 3, H, W) in [0, 1] -> the encoder input and the cell labels.
  colorization_batch prepare(const tensor<cpu>& rgb) const {
    check<shape_error>(rgb.rank() == 4 && rgb.dim(1) == 3, "colorization: expected RGB images (B, 3, H, W), got ",
                       rgb.shape());
    const int64_t B = rgb.dim(0), Hh = rgb.dim(2), W = rgb.dim(3), G = opt_.grid, P = Hh * W;
    check<shape_error>(Hh >= G && W >= G, "colorization: images of ", Hh, "x", W, " are smaller than the ", G, "x", G,
                       " grid");
    colorization_batch out{tensor<cpu>(shape{B, 1, Hh, W}), std::vector<int64_t>(size_t(B * G * G))};
    const float inv_std = 1.0f / opt_.input_std;
    parallel_for(0, B, [&](int64_t n) {
      const float* img = rgb.data() + n * 3 * P;
      float* x = out.input.data() + n * P;
      std::vector<double> sa(size_t(G * G), 0.0), sb(size_t(G * G), 0.0), cnt(size_t(G * G), 0.0);
      for (int64_t i = 0; i < Hh; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const int64_t p = i * W + j;
          const auto lab = pretext::detail::rgb_to_lab(img[p], img[P + p], img[2 * P + p]);
          x[p] = (float(lab[0] / 100.0) - opt_.input_mean) * inv_std;
          const size_t c = size_t((i * G / Hh) * G + j * G / W);
          sa[c] += lab[1];
          sb[c] += lab[2];
          cnt[c] += 1;
        }
      for (int64_t c = 0; c < G * G; ++c)
        out.labels[size_t(n * G * G + c)] =
            quantizer_.hard_encode(float(sa[size_t(c)] / cnt[size_t(c)]), float(sb[size_t(c)] / cnt[size_t(c)]));
    });
    return out;
  }

  /// views: one (or more; the first is used) batch of RGB images (B, 3, H, W) in [0, 1].
  /// On a device backend the batch is prepared on the host (a copy of views[0]: the Lab
  /// conversion and the bin search have no device op, and the labels are a host list anyway),
  /// then the input goes back up; the step itself runs on the device.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(!views.empty(), "colorization: expected at least one view, got none");
    if constexpr (std::same_as<backend_type, cpu>) {
      return train_on(prepare(views[0]));
    } else {
      tensor<cpu> rgb(views[0].shape());
      views[0].copy_to_host(rgb.data());
      return train_on(prepare(rgb));
    }
  }

  /// One step on a prepared (host) batch; a device backend uploads the input.
  step_stats train_on(const colorization_batch& b) {
    if constexpr (std::same_as<backend_type, cpu>)
      return run(b.input, b.labels);
    else
      return run(to_backend<backend_type>(b.input), b.labels);
  }

  const pretext::ab_quantizer& quantizer() const { return quantizer_; }
  const colorization_options& options() const { return opt_; }

 private:
  // input (B, 1, H, W) on the backend, B G G cell labels.
  step_stats run(const tensor<backend_type>& input, const std::vector<int64_t>& labels) {
    const int64_t B = input.dim(0), cells = opt_.grid * opt_.grid, Q = quantizer_.bins();
    check<shape_error>(int64_t(labels.size()) == B * cells, "colorization: expected ", B * cells, " cell labels, got ",
                       labels.size());
    auto h = encoder_.forward(input);
    auto logits = head_.forward(h.y);
    auto r = loss_(logits.y.reshaped(shape{B * cells, Q}), labels);
    encoder_.backward(std::move(h.saved), head_.backward(logits.saved, r.grad_logits.reshaped(shape{B, cells * Q})));
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "colorization");
    return {loss};
  }

  colorization_options opt_;
  pretext::ab_quantizer quantizer_;
};

}  // namespace ssl
