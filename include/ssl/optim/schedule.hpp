#pragma once
// Schedules: a value as a function of (step, total_steps), used for the learning rate,
// the weight decay (DINO 0.04 -> 0.4), the EMA momentum (BYOL/DINO 0.996 -> 1) and the
// teacher temperature warmup (DINO 0.04 -> 0.07).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <numbers>
#include <vector>

#include "../core/error.hpp"

namespace ssl {

/// Schedule: callable as s(step, total_steps) -> float, pure (same arguments, same value).
/// Satisfied by constant_schedule, warmup_cosine_schedule, step_schedule and any_schedule.
template <class S>
concept Schedule = requires(const S s, int64_t step, int64_t total) {
  { s(step, total) } -> std::convertible_to<float>;
};

/// A type-erased schedule, for runtime configuration.
using any_schedule = std::function<float(int64_t, int64_t)>;

/// The same value at every step.
struct constant_schedule {
  float value = 0.0f;
  float operator()(int64_t, int64_t) const { return value; }
};

/// Linear warmup then cosine decay, per step:
///   step < warmup:  start + (base - start) * step / warmup
///   otherwise:      final + (base - final) * (1 + cos(pi * p)) / 2,  p = (step - warmup) / (total - warmup)
/// p is clamped to [0, 1], so steps at or past total give `final_value`. With warmup = 0 this is
/// the cosine of BYOL/MoCo v3 (momentum 0.996 -> 1) and DINO (wd 0.04 -> 0.4); with
/// base == final it is a pure warmup (DINO's teacher temperature 0.04 -> 0.07).
struct warmup_cosine_schedule {
  float base = 0.0f;
  float final_value = 0.0f;
  int64_t warmup_steps = 0;
  float warmup_start = 0.0f;

  float operator()(int64_t step, int64_t total_steps) const {
    check(total_steps > 0, "warmup_cosine_schedule: total_steps must be > 0, got ", total_steps);
    check(warmup_steps >= 0 && warmup_steps <= total_steps, "warmup_cosine_schedule: warmup_steps must be in [0, ",
          total_steps, "], got ", warmup_steps);
    check(step >= 0, "warmup_cosine_schedule: step must be >= 0, got ", step);
    if (step < warmup_steps)
      return float(double(warmup_start) + (double(base) - warmup_start) * double(step) / double(warmup_steps));
    const int64_t span = total_steps - warmup_steps;
    const double p = span > 0 ? std::min(1.0, double(step - warmup_steps) / double(span)) : 1.0;
    return float(double(final_value) + (double(base) - final_value) * 0.5 * (1.0 + std::cos(std::numbers::pi * p)));
  }
};

/// A pure linear warmup from `start` to `end` over `warmup_steps`, then constant `end`.
inline warmup_cosine_schedule linear_warmup(float start, float end, int64_t warmup_steps) {
  return {end, end, warmup_steps, start};
}

/// Step decay: base * gamma^(number of milestones <= step). Milestones are step indices.
struct step_schedule {
  float base = 0.0f;
  float gamma = 0.1f;
  std::vector<int64_t> milestones;

  float operator()(int64_t step, int64_t) const {
    double v = base;
    for (int64_t m : milestones)
      if (step >= m) v *= gamma;
    return float(v);
  }
};

}  // namespace ssl
