#pragma once
// Helpers for the method tests: random view batches, tiny parts, and a finite-difference check of
// the loss a method's train_step reports against the gradients it accumulates.
#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <ssl/ssl.hpp>
#include <string>
#include <vector>

namespace method_test {

/// max |a - b| (0 when equal).
inline double max_diff(const ssl::tensor<ssl::cpu>& a, const ssl::tensor<ssl::cpu>& b) {
  ssl::expect_shape(a, b.shape(), "max_diff");
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}

/// A (B, C, H, W) batch of N(0, 1) values.
inline ssl::tensor<ssl::cpu> random_batch(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  ssl::tensor<ssl::cpu> t(ssl::shape{B, C, H, W});
  ssl::rng g(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
  return t;
}
/// Two views: the same base images plus small independent noise (views of "the same image").
inline std::vector<ssl::tensor<ssl::cpu>> two_views(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  auto base = random_batch(B, C, H, W, seed);
  std::vector<ssl::tensor<ssl::cpu>> v;
  for (uint64_t k = 1; k <= 2; ++k) {
    auto noise = random_batch(B, C, H, W, seed + 100 * k);
    ssl::tensor<ssl::cpu> x = base;
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += 0.3f * noise[i];
    v.push_back(std::move(x));
  }
  return v;
}

/// DINO's multi-crop for the tests: 2 global 8x8 views (two_views), then `locals` 4x4 crops.
inline std::vector<ssl::tensor<ssl::cpu>> multi_crop(int64_t B, int locals, uint64_t seed) {
  std::vector<ssl::tensor<ssl::cpu>> v = two_views(B, 1, 8, 8, seed);
  for (int l = 0; l < locals; ++l) v.push_back(random_batch(B, 1, 4, 4, seed + 10 + uint64_t(l)));
  return v;
}

/// Perturbs every parameter of m (not weight_g) so gradients are well above float noise.
template <class M>
void shake_parameters(M& m, float scale = 0.3f) {
  ssl::rng g(77);
  for (auto& r : ssl::parameters(m))
    if (r.name.find("weight_g") == std::string::npos)
      for (int64_t i = 0; i < r.p->value.numel(); ++i) r.p->value[i] += scale * g.normal();
}

inline ssl::mlp_encoder<> tiny_encoder(int64_t in, int64_t width = 16, uint64_t seed = 3) {
  return ssl::mlp_encoder<>(in, {width}, seed);
}
inline ssl::projection_mlp<> tiny_head(int64_t in, int64_t hidden, int64_t out, uint64_t seed = 5, int layers = 2) {
  return ssl::projection_mlp<>({.in_dim = in, .hidden_dim = hidden, .out_dim = out, .layers = layers}, ssl::rng(seed));
}

/// check_step_gradients's max_params for "every parameter".
inline constexpr size_t all_params = std::numeric_limits<size_t>::max();

/// Runs `step` once, keeps the gradients it accumulated into the first `max_params` parameters of
/// `m`, and checks them against central differences of the loss `step` reports. `after_first_step`
/// runs right after that first step, while the gradients are still the step's (the finite
/// differences re-run `step`, accumulating more).
template <class M>
ssl::testing::gradient_check_result check_step_gradients(M& m, const std::function<float()>& step,
                                                         size_t max_params = 6,
                                                         ssl::testing::gradient_check_options o = {.eps = 1e-3},
                                                         const std::function<void()>& after_first_step = {}) {
  ssl::param_list<ssl::cpu> params;
  m.collect(params, "");
  REQUIRE(!params.empty());
  for (auto& r : params) r.p->grad.zero();
  step();
  if (after_first_step) after_first_step();
  std::vector<ssl::tensor<ssl::cpu>> values, grads;
  std::vector<ssl::parameter<ssl::cpu>*> chosen;
  for (size_t i = 0; i < params.size() && chosen.size() < max_params; ++i) {
    chosen.push_back(params[i].p);
    values.push_back(params[i].p->value);
    grads.push_back(params[i].p->grad);
  }
  auto loss = [&](std::vector<ssl::tensor<ssl::cpu>>& in) {
    for (size_t k = 0; k < chosen.size(); ++k) chosen[k]->value = in[k];
    const double l = step();
    return l;
  };
  auto res = ssl::testing::check_function_gradients(loss, values, grads, o);
  for (size_t k = 0; k < chosen.size(); ++k) chosen[k]->value = values[k];
  return res;
}

/// Steps of SGD on fixed views; returns (first loss, mean of the last 3 losses).
template <class M, class Step>
std::pair<float, float> train_a_little(M& m, Step&& step, int steps, float lr) {
  ssl::param_list<ssl::cpu> params;
  m.collect(params, "");
  ssl::sgd opt(params, {.lr = lr, .momentum = 0.9f});
  float first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    for (auto& r : params) r.p->grad.zero();
    const float l = step();
    opt.step();
    m.after_step(ssl::step_info{s + 1, steps, 0});
    if (s == 0) first = l;
    if (s >= steps - 3) last += l / 3;
  }
  return {first, last};
}

/// Runs f, expecting an ssl::shape_error whose message contains every string of `parts`.
template <class F>
void expect_shape_error_naming(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected ssl::shape_error");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      INFO("message: " << msg << "\nmissing: " << p);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
}

}  // namespace method_test
