#pragma once
// data2vec's targets and regression loss (Baevski et al. 2022, "data2vec: A General Framework for
// Self-supervised Learning in Speech, Vision and Language"; the vision model of fairseq's
// examples/data2vec, config base_imagenet_d2v1):
//   targets(layers):  layers = the teacher's last K block outputs y_1 .. y_K, each (N, T, D)
//     y_k' = LN(y_k) with layer_norm_target_layer (off in the vision config), else y_k
//     t    = 1/K sum_k y_k'                                                     (N, T, D)
//     t    = LN(t) with layer_norm_targets (on in the vision config)
//     LN: per token over D, no affine, eps 1e-5 (F.layer_norm).
//   operator()(pred, target, normaliser):  pred, target (M, D): the M masked tokens' predictions
//     and targets; e = pred - target,
//     f(e) = 0.5 e^2 / beta if |e| < beta, |e| - 0.5 beta otherwise   (smooth L1, beta > 0)
//     f(e) = e^2                                                       (beta = 0: squared error)
//     L = scale / normaliser sum_m sum_d f(e_md),  scale = 1 / sqrt(D) by default (loss_scale -1),
//     normaliser = M by default (fairseq sums the loss and divides by the sample size, the number
//     of masked tokens; data2vec<E> passes the global batch's count over the replicas).
//   Gradient: d pred = scale / normaliser f'(e), f' = clamp(e / beta, -1, 1) or 2 e. The target is data.
// The CPU sums go row by row in double, then the rows in order: the value does not depend on the
// thread count. On a device backend (under nvcc) targets() runs the device layer norm and
// ops::add_range, and the loss reuses the smooth-L1 / masked-reconstruction device losses, scaled;
// the value is then a (1) device tensor.
#include <cmath>
#include <concepts>
#include <vector>

#include "detail/row_math.hpp"
#include "masked_reconstruction.hpp"
#include "smooth_l1.hpp"
#include "../backend/cpu/vit_ops.hpp"
#include "../core/profile.hpp"
#include "../nn/layer_norm.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"  // ops::add_range on tensor<cuda>
#endif

namespace ssl {

struct data2vec_loss_options {
  float beta = 2.0f;                     // smooth-L1 threshold; 0: squared error (fairseq's loss_beta)
  float loss_scale = -1.0f;              // -1: 1 / sqrt(D); else > 0, used as given
  bool layer_norm_target_layer = false;  // LN each of the K block outputs before the average
  bool layer_norm_targets = true;        // LN the average
  float eps = 1e-5f;                     // the targets' LayerNorm eps
};

/// The loss value: a host float on the CPU, a (1) device tensor on a device backend.
template <class B>
struct data2vec_loss_result {
  std::conditional_t<std::same_as<B, cpu>, float, tensor<B>> value{};
  tensor<B> grad_pred;  // (M, D)
};

class data2vec_loss {
 public:
  explicit data2vec_loss(const data2vec_loss_options& o = {}) : opt_(o) {
    check<value_error>(o.beta >= 0.0f && std::isfinite(o.beta), "data2vec_loss: expected beta >= 0 (0: squared error), got ",
                       o.beta);
    check<value_error>(o.loss_scale == -1.0f || (o.loss_scale > 0.0f && std::isfinite(o.loss_scale)),
                       "data2vec_loss: expected loss_scale -1 (1 / sqrt(D)) or > 0, got ", o.loss_scale);
    losses_detail::expect_positive(o.eps, "data2vec_loss eps");
  }
  const data2vec_loss_options& options() const { return opt_; }
  /// The factor of the summed loss for tokens of width D.
  double scale(int64_t D) const { return opt_.loss_scale == -1.0f ? 1.0 / std::sqrt(double(D)) : double(opt_.loss_scale); }

  /// layers: K >= 1 tensors (N, T, D) of one shape -> the targets (N, T, D). Builds the
  /// affine-free LN of width D for this call; a training loop passes its own (the overload below).
  template <class B>
  tensor<B> targets(const std::vector<tensor<B>>& layers) const {
    check<value_error>(!layers.empty(), "data2vec_loss::targets: expected at least one block output, got none");
    return targets(layers, layer_norm<B>(layers[0].shape().rank() == 3 ? layers[0].dim(2) : 1, opt_.eps));
  }
  /// As above with `ln` the targets' LayerNorm: weight 1, bias 0 (never trained), width D, eps
  /// options().eps (data2vec<E> keeps one, so a step allocates no parameters).
  template <class B>
  tensor<B> targets(const std::vector<tensor<B>>& layers, const layer_norm<B>& ln) const {
    SSL_PROFILE_SCOPE("data2vec targets");
    check<value_error>(!layers.empty(), "data2vec_loss::targets: expected at least one block output, got none");
    const shape s = layers[0].shape();
    check<shape_error>(s.rank() == 3 && s.numel() > 0, "data2vec_loss::targets: expected block outputs (N, T, D), got ", s);
    for (size_t k = 1; k < layers.size(); ++k) expect_shape(layers[k], s, "data2vec_loss::targets block output");
    check<shape_error>(ln.dim() == s[2], "data2vec_loss::targets: the LayerNorm has width ", ln.dim(),
                       ", the block outputs ", s[2]);
    const int64_t n = s.numel();
    const float w = float(1.0 / double(layers.size()));
    tensor<B> avg(s, 0.0f);
    for (const auto& y : layers) {
      if (opt_.layer_norm_target_layer) ops::add_range(avg, 0, ln.infer(y), 0, n, w);
      else ops::add_range(avg, 0, y, 0, n, w);
    }
    return opt_.layer_norm_targets ? ln.infer(avg) : avg;
  }

  /// pred, target (M, D); normaliser > 0 (<= 0: M).
  data2vec_loss_result<cpu> operator()(const tensor<cpu>& pred, const tensor<cpu>& target, double normaliser = 0) const {
    SSL_PROFILE_SCOPE("data2vec loss");
    check_inputs(pred.shape(), target.shape());
    const int64_t M = pred.dim(0), D = pred.dim(1);
    const double c = scale(D) / (normaliser > 0 ? normaliser : double(M)), beta = opt_.beta;
    data2vec_loss_result<cpu> res;
    res.grad_pred = tensor<cpu>(pred.shape());
    std::vector<double> row_sum(size_t(M), 0.0);
    parallel_for(0, M, [&](int64_t m) {
      const float* x = pred.data() + m * D;
      const float* t = target.data() + m * D;
      float* g = res.grad_pred.data() + m * D;
      double s = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double e = double(x[d]) - double(t[d]), a = std::abs(e);
        if (beta > 0) {
          s += a < beta ? 0.5 * e * e / beta : a - 0.5 * beta;
          g[d] = float(c * std::clamp(e / beta, -1.0, 1.0));
        } else {
          s += e * e;
          g[d] = float(c * 2.0 * e);
        }
      }
      row_sum[size_t(m)] = s;
    });
    res.value = float(c * losses_detail::ordered_sum(row_sum));
    return res;
  }
  /// pred, target (M, D) on a device backend: the smooth-L1 (or masked-reconstruction MSE) device
  /// loss, mean over the M D values, rescaled by scale D M / normaliser.
  template <class B>
    requires(!std::same_as<B, cpu>)
  data2vec_loss_result<B> operator()(const tensor<B>& pred, const tensor<B>& target, double normaliser = 0) const {
    check_inputs(pred.shape(), target.shape());
    const int64_t M = pred.dim(0), D = pred.dim(1);
    const float k = float(scale(D) * double(D) * double(M) / (normaliser > 0 ? normaliser : double(M)));
    data2vec_loss_result<B> res{tensor<B>(shape{1}, 0.0f), tensor<B>(pred.shape(), 0.0f)};
    auto rescale = [&](const auto& r) {
      ops::add_range(res.value, 0, r.value, 0, 1, k);
      ops::add_range(res.grad_pred, 0, r.grad_pred, 0, M * D, k);
    };
    if (opt_.beta > 0) {
      rescale(smooth_l1(opt_.beta)(pred, target));
    } else {  // mean squared error = masked reconstruction of one sequence of M tokens, all masked
      tensor<B> p = pred, t = target;
      p.reshape(shape{1, M, D});
      t.reshape(shape{1, M, D});
      rescale(masked_reconstruction(/*norm_pix=*/false)(p, t, tensor<cpu>(shape{1, M}, 1.0f)));
    }
    return res;
  }

 private:
  static void check_inputs(const shape& pred, const shape& target) {
    check<shape_error>(pred.rank() == 2 && pred.numel() > 0, "data2vec_loss pred: expected (M, D) with M, D >= 1, got ",
                       pred);
    expect_shape(target, pred, "data2vec_loss target");
  }
  data2vec_loss_options opt_;
};

}  // namespace ssl
