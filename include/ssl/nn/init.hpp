#pragma once
// Parameter initialisers (in place, CPU tensors), matching torch.nn.init's definitions.
// Each takes an ssl::rng stream, so a model built from one seed is reproducible.
#include <cmath>
#include <numbers>

#include "../core/rng.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::init {

/// U(lo, hi) elementwise (torch.nn.init.uniform_).
inline void uniform(tensor<cpu>& t, rng& g, float lo, float hi) {
  check<value_error>(lo <= hi, "init::uniform: expected lo <= hi, got lo = ", lo, ", hi = ", hi);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.uniform(lo, hi);
}

/// N(mean, std^2) truncated to [a, b] (absolute bounds, as torch.nn.init.trunc_normal_ and timm;
/// ViT/DINO/MAE use std 0.02 with the default [-2, 2]). Drawn by rejection.
inline void trunc_normal(tensor<cpu>& t, rng& g, float std, float mean = 0.0f, float a = -2.0f, float b = 2.0f) {
  check<value_error>(std > 0.0f, "init::trunc_normal: expected std > 0, got ", std);
  check<value_error>(a < b, "init::trunc_normal: expected a < b, got [", a, ", ", b, "]");
  // Probability of the window under N(mean, std^2); rejection needs it not to be tiny.
  const double z = std::numbers::sqrt2 * double(std);
  const double mass = 0.5 * (std::erf((double(b) - mean) / z) - std::erf((double(a) - mean) / z));
  check<value_error>(mass >= 1e-3, "init::trunc_normal: window [", a, ", ", b, "] holds only ", mass,
                     " of N(", mean, ", ", std, "^2); expected at least 1e-3");
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v;
    do v = g.normal(mean, std);
    while (v < a || v > b);
    t[i] = v;
  }
}

/// U(-r, r) with r = gain * sqrt(6 / (fan_in + fan_out)) (torch.nn.init.xavier_uniform_).
inline void xavier_uniform(tensor<cpu>& t, rng& g, int64_t fan_in, int64_t fan_out, float gain = 1.0f) {
  check<value_error>(fan_in + fan_out > 0, "init::xavier_uniform: expected fan_in + fan_out > 0, got ", fan_in, " + ",
                     fan_out);
  const float r = gain * std::sqrt(6.0f / float(fan_in + fan_out));
  uniform(t, g, -r, r);
}

}  // namespace ssl::init
