#pragma once
// Helpers for the loss tests: fixture cases "c<i>.<name>", random inputs, gradient checks.
#include <catch2/catch.hpp>
#include <functional>
#include <ssl/core/rng.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace loss_test {

using tensor = ssl::tensor<ssl::cpu>;

/// One case "c<i>." of a loss fixture file.
struct fixture_case {
  const ssl_test::fixture& f;
  std::string prefix;
  tensor t(const std::string& name) const { return f.tensor(prefix + name); }
  float s(const std::string& name) const { return f.scalar(prefix + name); }
  bool has(const std::string& name) const { return f.has(prefix + name); }
  std::vector<int64_t> labels(const std::string& name) const {
    const tensor l = t(name);
    std::vector<int64_t> out;
    for (int64_t i = 0; i < l.numel(); ++i) out.push_back(int64_t(l[i]));
    return out;
  }
};

/// Calls body(case) for every case of the file; requires at least one.
inline void for_each_case(const std::string& file, const std::function<void(const fixture_case&)>& body) {
  ssl_test::fixture f("losses/" + file);
  auto prefix = [](int i) {
    std::string p = "c";
    p += std::to_string(i);
    p += '.';
    return p;
  };
  int n = 0;
  for (; f.has(prefix(n) + "value"); ++n) {
    INFO(file << " case " << n);
    body(fixture_case{f, prefix(n)});
  }
  REQUIRE(n > 0);
}

/// Relative error of a scalar against its reference.
inline double rel(float a, float ref) { return std::abs(double(a) - ref) / std::max(1e-6, std::abs(double(ref))); }

/// (shape) standard normal tensor, scaled.
inline tensor randn(const ssl::shape& s, uint64_t seed, float scale = 1.0f) {
  ssl::rng g(seed);
  tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * g.normal();
  return t;
}

/// Finite-difference check of a loss's analytic gradients; value(inputs) recomputes the loss.
inline void expect_gradients(const std::function<double(std::vector<tensor>&)>& value, std::vector<tensor> inputs,
                             const std::vector<tensor>& grads, double eps = 1e-2, double atol = 1e-4) {
  ssl::testing::gradient_check_options o;
  o.eps = eps;
  o.atol = atol;
  o.max_checks = 40;
  const auto res = ssl::testing::check_function_gradients(value, std::move(inputs), grads, o);
  INFO(res.report());
  CHECK(res.ok());
}

/// True when every element is finite.
inline bool all_finite(const tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t[i])) return false;
  return true;
}

}  // namespace loss_test
