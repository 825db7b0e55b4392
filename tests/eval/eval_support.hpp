#pragma once
// Helpers shared by the tests of ssl/eval.
#include <cmath>
#include <ssl/core/rng.hpp>
#include <ssl/tensor/tensor.hpp>
#include <vector>

namespace eval_test {

/// Labels stored as floats in a fixture tensor.
inline std::vector<int> labels(const ssl::tensor<ssl::cpu>& t) {
  std::vector<int> y(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) y[size_t(i)] = int(std::lround(t[i]));
  return y;
}

/// (rows, cols) standard-normal tensor.
inline ssl::tensor<ssl::cpu> randn(int64_t rows, int64_t cols, uint64_t seed) {
  ssl::rng g(seed);
  ssl::tensor<ssl::cpu> t(ssl::shape{rows, cols});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
  return t;
}

}  // namespace eval_test
