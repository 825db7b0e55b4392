#pragma once
// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011).
//
// A draw is a pure function of (key, counter): the same seed gives the same
// numbers whatever the number of threads or the order in which samples are
// visited. Derive one stream per (seed, epoch, sample, purpose) with `fork`.
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "error.hpp"

namespace ssl {

/// Philox-4x32-10 block: 4 x 32 random bits from a 128-bit counter and 64-bit key.
inline std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  constexpr uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(m0) * ctr[0];
    const uint64_t p1 = uint64_t(m1) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ key[1], uint32_t(p0)};
    key[0] += w0;
    key[1] += w1;
  }
  return ctr;
}

/// SplitMix64 finaliser, used to mix stream identifiers into keys.
constexpr uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// A stream of random numbers: a 64-bit key plus a running 64-bit counter.
/// Cheap to copy; `fork(id)` gives an independent stream for a sub-task.
class rng {
 public:
  explicit rng(uint64_t seed = 0, uint64_t stream = 0) : key_(mix64(seed ^ mix64(stream + 0x632BE59BD9B4E019ull))) {}

  /// Independent child stream, a pure function of this stream's key and `id`.
  [[nodiscard]] rng fork(uint64_t id) const {
    rng r;
    r.key_ = mix64(key_ ^ mix64(id * 0x9E3779B97F4A7C15ull + 1));
    return r;
  }

  uint64_t key() const { return key_; }
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) {
    counter_ = c;
    have_ = 0;
  }

  /// 32 uniformly random bits.
  uint32_t next_u32() {
    if (have_ == 0) {
      buf_ = philox4x32({uint32_t(counter_), uint32_t(counter_ >> 32), 0u, 0u}, {uint32_t(key_), uint32_t(key_ >> 32)});
      ++counter_;
      have_ = 4;
    }
    return buf_[4 - have_--];
  }
  /// Uniform in [0, 1) with 24 bits of resolution (exactly representable in float).
  float uniform() { return float(next_u32() >> 8) * (1.0f / 16777216.0f); }
  /// Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n) (n > 0), by rejection so it is unbiased.
  uint32_t below(uint32_t n) {
    const uint32_t limit = uint32_t(-n) % n;  // 2^32 mod n
    for (;;) {
      const uint64_t m = uint64_t(next_u32()) * n;
      if (uint32_t(m) >= limit) return uint32_t(m >> 32);
    }
  }
  /// Standard normal by Box-Muller (two uniforms per draw; no cached spare, so draws are stateless in pairs).
  float normal() {
    const float u1 = (float(next_u32() >> 8) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
    const float u2 = uniform();
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(2.0f * std::numbers::pi_v<float> * u2);
  }
  float normal(float mean, float std) { return mean + std * normal(); }
  bool bernoulli(float p) { return uniform() < p; }
  /// Gamma(shape, 1) (shape > 0): Marsaglia & Tsang (2000) for shape >= 1; for shape < 1 the
  /// boost Gamma(a) = Gamma(a + 1) U^(1/a). Mean shape, variance shape.
  float gamma(float shape) { return float(std::exp(log_gamma_variate(shape, "rng::gamma"))); }
  /// Beta(a, b) (a, b > 0) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b); formed from log X and log Y,
  /// so shapes far below 1 (whose Gamma draws underflow) still give a value in [0, 1].
  /// Mean a / (a + b), variance a b / ((a + b)^2 (a + b + 1)).
  float beta(float a, float b) {
    const double lx = log_gamma_variate(a, "rng::beta"), ly = log_gamma_variate(b, "rng::beta");
    return float(1.0 / (1.0 + std::exp(ly - lx)));
  }

 private:
  // log of a Gamma(shape, 1) draw. Marsaglia-Tsang, d = a - 1/3, c = 1 / sqrt(9 d):
  //   x ~ N(0, 1), v = (1 + c x)^3 (> 0), U ~ U(0, 1]; accept d v when
  //   U < 1 - 0.0331 x^4 (squeeze) or log U < x^2 / 2 + d (1 - v + log v).
  // For a < 1: log Gamma(a + 1) + log(U) / a.
  double log_gamma_variate(float shape, const char* who) {
    check<value_error>(shape > 0.0f && std::isfinite(shape), who, ": expected a finite shape > 0, got ", shape);
    const double a = shape < 1.0f ? double(shape) + 1.0 : double(shape);
    const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    double log_g;
    for (;;) {
      const double x = normal(), t = 1.0 + c * x;
      if (t <= 0.0) continue;
      const double v = t * t * t, u = open_uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
        log_g = std::log(d * v);
        break;
      }
    }
    if (shape < 1.0f) log_g += std::log(open_uniform()) / double(shape);
    return log_g;
  }
  // Uniform in (0, 1], 24 bits (never 0, so its log is finite).
  double open_uniform() { return (double(next_u32() >> 8) + 1.0) * (1.0 / 16777216.0); }

  uint64_t key_ = 0;
  uint64_t counter_ = 0;
  std::array<uint32_t, 4> buf_{};
  int have_ = 0;
};

}  // namespace ssl
