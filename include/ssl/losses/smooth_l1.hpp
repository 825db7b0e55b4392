#pragma once
// Smooth L1 (Huber-style) regression loss, as torch.nn.functional.smooth_l1_loss with
// reduction "mean"; I-JEPA's loss (Assran et al. 2023, "Self-Supervised Learning from Images
// with a Joint-Embedding Predictive Architecture"), there with beta = 1 between the predictor's
// outputs and the layer-normed target-encoder features of the target blocks:
//   pred, target: any shape, the same for both, numel n > 0.  d = pred - target (elementwise),
//   f(d) = 0.5 d^2 / beta   if |d| < beta,
//          |d| - 0.5 beta   otherwise,                      L = 1/n sum f(d).
// Gradient: d pred = clamp(d / beta, -1, 1) / n (f is C^1: both branches give +-1 at |d| = beta).
// The target is data (I-JEPA's target encoder runs without gradient), so there is no grad_target.
// The sum is taken in double over fixed chunks of elements, then the chunks in order: the value
// does not depend on the thread count.
// On a device backend (tensor<cuda>, under nvcc) the same loss runs there (backend/cuda/
// smooth_l1.cuh); the result's `value` is then a (1) device tensor, so the step never waits for it.
#include <algorithm>
#include <cmath>
#include <concepts>

#include "detail/row_math.hpp"
#include "../core/profile.hpp"

namespace ssl {

struct smooth_l1_result {
  float value = 0;
  tensor<cpu> grad_pred;  // the shape of pred
};

namespace losses_detail {
/// Validates smooth_l1's inputs, on either backend: pred non-empty, target of pred's shape.
inline void check_smooth_l1_inputs(const shape& pred, const shape& target) {
  check<shape_error>(pred.numel() > 0, "smooth_l1 pred: expected a non-empty tensor, got shape ", pred);
  expect_shape(target, pred, "smooth_l1 target");
}

/// Elements per chunk of the CPU sum (fixed, so the chunk partials do not depend on the threads).
inline constexpr int64_t smooth_l1_chunk = 4096;
}  // namespace losses_detail

class smooth_l1 {
 public:
  explicit smooth_l1(float beta = 1.0f) : beta_(beta) { losses_detail::expect_positive(beta, "smooth_l1 beta"); }
  float beta() const { return beta_; }

  // pred, target: same shape, any rank
  smooth_l1_result operator()(const tensor<cpu>& pred, const tensor<cpu>& target) const {
    SSL_PROFILE_SCOPE("smooth_l1 loss");
    losses_detail::check_smooth_l1_inputs(pred.shape(), target.shape());
    const int64_t n = pred.numel(), chunk = losses_detail::smooth_l1_chunk;
    const int64_t chunks = (n + chunk - 1) / chunk;
    const double beta = beta_, inv_beta = 1.0 / beta, inv_n = 1.0 / double(n);

    smooth_l1_result res;
    res.grad_pred = tensor<cpu>(pred.shape());
    std::vector<double> partial(size_t(chunks), 0.0);
    parallel_for(0, chunks, [&](int64_t c) {
      const int64_t begin = c * chunk, end = std::min(n, begin + chunk);
      const float* x = pred.data();
      const float* t = target.data();
      float* g = res.grad_pred.data();
      double s = 0;
      for (int64_t i = begin; i < end; ++i) {
        const double d = double(x[i]) - double(t[i]), a = std::abs(d);
        s += a < beta ? 0.5 * d * d * inv_beta : a - 0.5 * beta;           // f(d)
        g[i] = float(std::clamp(d * inv_beta, -1.0, 1.0) * inv_n);       // f'(d) / n
      }
      partial[size_t(c)] = s;
    }, 2);
    res.value = float(losses_detail::ordered_sum(partial) * inv_n);
    return res;
  }
  // pred, target: same shape on a device backend.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& pred, const tensor<B>& target) const {
    return device_smooth_l1(*this, pred, target);
  }

 private:
  float beta_ = 1.0f;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/smooth_l1.cuh"
#endif
