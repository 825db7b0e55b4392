#pragma once
// Parameter initialisers (in place), matching torch.nn.init's definitions.
// Each takes an ssl::rng stream, so a model built from one seed is reproducible. The values are
// always drawn on the host in the same order, so a tensor<cuda> gets exactly the numbers its
// tensor<cpu> twin gets from the same seed (copied to the device once, at construction).
#include <cmath>
#include <numbers>

#include "../core/rng.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::init {

namespace detail {
/// Runs fill(host) on a host tensor of t's shape and copies it into t (t itself when on the CPU).
template <class B, class F>
void on_host(tensor<B>& t, F&& fill) {
  if constexpr (std::same_as<B, cpu>) {
    fill(t);
  } else {
    tensor<cpu> h(t.shape());
    fill(h);
    t.copy_from_host(h.data());
  }
}
}  // namespace detail

/// U(lo, hi) elementwise (torch.nn.init.uniform_).
template <class B>
void uniform(tensor<B>& t, rng& g, float lo, float hi) {
  check<value_error>(lo <= hi, "init::uniform: expected lo <= hi, got lo = ", lo, ", hi = ", hi);
  detail::on_host(t, [&](tensor<cpu>& h) {
    for (int64_t i = 0; i < h.numel(); ++i) h[i] = g.uniform(lo, hi);
  });
}

/// N(mean, std^2) truncated to [a, b] (absolute bounds, as torch.nn.init.trunc_normal_ and timm;
/// ViT/DINO/MAE use std 0.02 with the default [-2, 2]). Drawn by rejection.
template <class B>
void trunc_normal(tensor<B>& t, rng& g, float std, float mean = 0.0f, float a = -2.0f, float b = 2.0f) {
  check<value_error>(std > 0.0f, "init::trunc_normal: expected std > 0, got ", std);
  check<value_error>(a < b, "init::trunc_normal: expected a < b, got [", a, ", ", b, "]");
  // Probability of the window under N(mean, std^2); rejection needs it not to be tiny.
  const double z = std::numbers::sqrt2 * double(std);
  const double mass = 0.5 * (std::erf((double(b) - mean) / z) - std::erf((double(a) - mean) / z));
  check<value_error>(mass >= 1e-3, "init::trunc_normal: window [", a, ", ", b, "] holds only ", mass,
                     " of N(", mean, ", ", std, "^2); expected at least 1e-3");
  detail::on_host(t, [&](tensor<cpu>& h) {
    for (int64_t i = 0; i < h.numel(); ++i) {
      float v;
      do v = g.normal(mean, std);
      while (v < a || v > b);
      h[i] = v;
    }
  });
}

/// U(-r, r) with r = gain * sqrt(6 / (fan_in + fan_out)) (torch.nn.init.xavier_uniform_).
template <class B>
void xavier_uniform(tensor<B>& t, rng& g, int64_t fan_in, int64_t fan_out, float gain = 1.0f) {
  check<value_error>(fan_in + fan_out > 0, "init::xavier_uniform: expected fan_in + fan_out > 0, got ", fan_in, " + ",
                     fan_out);
  const float r = gain * std::sqrt(6.0f / float(fan_in + fan_out));
  uniform(t, g, -r, r);
}

}  // namespace ssl::init
