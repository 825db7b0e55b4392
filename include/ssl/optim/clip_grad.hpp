#pragma once
// Gradient clipping.
//   clip_grad_norm:       g_i *= c / (||g|| + 1e-6) for all i when that factor is < 1, ||g|| the global L2
//                         norm over every parameter's gradient (torch.nn.utils.clip_grad_norm_).
//   clip_grad_per_param:  each parameter's gradient clipped to norm c the same way (DINO's clip_gradients).
// Frozen parameters are skipped. Norms are accumulated in double, in a fixed order.
#include <cmath>
#include <vector>

#include "../core/parallel.hpp"
#include "../nn/module.hpp"

namespace ssl {

namespace detail {
inline double grad_sq_norm(const tensor<cpu>& g) {
  double s = 0;
  const float* d = g.data();
  for (int64_t j = 0; j < g.numel(); ++j) s += double(d[j]) * d[j];
  return s;
}
inline void scale_grad(tensor<cpu>& g, float f) {
  float* d = g.data();
  for (int64_t j = 0; j < g.numel(); ++j) d[j] *= f;
}
}  // namespace detail

/// Clips the global gradient norm to max_norm; returns the norm before clipping.
inline double clip_grad_norm(param_list<cpu>& params, double max_norm) {
  check(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  std::vector<double> sq(params.size(), 0.0);
  parallel_for(0, int64_t(params.size()), [&](int64_t i) {
    if (!params[size_t(i)].p->frozen) sq[size_t(i)] = detail::grad_sq_norm(params[size_t(i)].p->grad);
  });
  double total = 0;
  for (double s : sq) total += s;
  const double norm = std::sqrt(total);
  check<numeric_error>(std::isfinite(norm), "clip_grad_norm: the gradient norm is not finite (", norm, ")");
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    parallel_for(0, int64_t(params.size()), [&](int64_t i) {
      if (!params[size_t(i)].p->frozen) detail::scale_grad(params[size_t(i)].p->grad, float(coef));
    });
  return norm;
}

/// Clips each parameter's gradient norm to max_norm; returns the norms before clipping.
inline std::vector<double> clip_grad_per_param(param_list<cpu>& params, double max_norm) {
  check(max_norm > 0, "clip_grad_per_param: max_norm must be > 0, got ", max_norm);
  std::vector<double> norms(params.size(), 0.0);
  parallel_for(0, int64_t(params.size()), [&](int64_t i) {
    auto& p = *params[size_t(i)].p;
    if (p.frozen) return;
    norms[size_t(i)] = std::sqrt(detail::grad_sq_norm(p.grad));
    const double coef = max_norm / (norms[size_t(i)] + 1e-6);
    if (coef < 1.0) detail::scale_grad(p.grad, float(coef));
  });
  return norms;
}

}  // namespace ssl
