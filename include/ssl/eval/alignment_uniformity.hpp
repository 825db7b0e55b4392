#pragma once
// Alignment and uniformity of a representation (Wang & Isola, ICML 2020), on L2-normalised features:
//   alignment(x, y)  = mean_i ||f(x_i) - f(y_i)||_2^alpha            positive pairs, alpha = 2
//   uniformity(x)    = log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2)   all distinct pairs, t = 2
// Lower is better for both. For unit vectors ||a - b||^2 = 2 - 2 a.b, so the pairwise term
// is one GEMM (Gram matrix); the log-mean-exp is accumulated in double with its maximum factored out.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../backend/cpu/gemm.hpp"
#include "../core/parallel.hpp"

namespace ssl::eval {

namespace detail {
// Copy of x: (N, D) with unit rows (F.normalize, eps 1e-12).
inline tensor<cpu> l2_normalized_rows(const tensor<cpu>& x) {
  tensor<cpu> out(x.shape());
  const int64_t n = x.dim(0), dim = x.dim(1);
  parallel_for(0, n, [&](int64_t i) {
    const float* r = x.data() + i * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) s += double(r[j]) * r[j];
    const float inv = float(1.0 / std::max(std::sqrt(s), 1e-12));
    for (int64_t j = 0; j < dim; ++j) out[i * dim + j] = r[j] * inv;
  }, 256);
  return out;
}
}  // namespace detail

/// Alignment of positive pairs (x_i, y_i); x, y: (N, D).
inline double alignment(const tensor<cpu>& x, const tensor<cpu>& y, double alpha = 2.0) {
  expect_rank(x, 2, "alignment x");
  check<shape_error>(x.shape() == y.shape(), "alignment: x and y must have the same shape, got ", x.shape(), " and ",
                     y.shape());
  check<shape_error>(x.dim(0) >= 1, "alignment: expected at least one pair, got shape ", x.shape());
  check(alpha > 0, "alignment: alpha must be > 0, got ", alpha);
  const tensor<cpu> a = detail::l2_normalized_rows(x), b = detail::l2_normalized_rows(y);
  const int64_t n = x.dim(0), dim = x.dim(1);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d2 = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const double d = double(a[i * dim + j]) - b[i * dim + j];
      d2 += d * d;
    }
    total += std::pow(d2, alpha / 2);
  }
  return total / double(n);
}

/// Uniformity of the rows of x: (N, D), N >= 2.
inline double uniformity(const tensor<cpu>& x, double t = 2.0) {
  expect_rank(x, 2, "uniformity x");
  check<shape_error>(x.dim(0) >= 2, "uniformity: expected at least 2 rows, got shape ", x.shape());
  check(t > 0, "uniformity: t must be > 0, got ", t);
  const tensor<cpu> a = detail::l2_normalized_rows(x);
  const int64_t n = x.dim(0), dim = x.dim(1);
  tensor<cpu> gram(shape{n, n});  // G = A A^T: (N, N)
  ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, n, n, dim, 1.0f, a.data(), dim, a.data(), dim, 0.0f, gram.data(), n);
  // exponent e_ij = -t ||a_i - a_j||^2 = -t (2 - 2 G_ij) <= 0, maximal (0) for identical rows
  std::vector<double> row_max(size_t(n), -INFINITY);
  auto exponent = [&](int64_t i, int64_t j) { return -t * std::max(0.0, 2.0 - 2.0 * double(gram[i * n + j])); };
  parallel_for(0, n, [&](int64_t i) {
    for (int64_t j = i + 1; j < n; ++j) row_max[size_t(i)] = std::max(row_max[size_t(i)], exponent(i, j));
  });
  const double emax = *std::max_element(row_max.begin(), row_max.end() - 1);
  std::vector<double> row_sum(size_t(n), 0.0);
  parallel_for(0, n, [&](int64_t i) {
    for (int64_t j = i + 1; j < n; ++j) row_sum[size_t(i)] += std::exp(exponent(i, j) - emax);
  });
  double s = 0;
  for (double v : row_sum) s += v;
  const double pairs = double(n) * double(n - 1) / 2;
  return emax + std::log(s / pairs);
}

struct alignment_uniformity_result {
  double alignment = 0;     // E ||f(x) - f(y)||^alpha
  double uniformity_x = 0;  // log E exp(-t ||f(x_i) - f(x_j)||^2)
  double uniformity_y = 0;
  double uniformity = 0;    // (uniformity_x + uniformity_y) / 2, as in Wang & Isola's loss
};

/// Both metrics for two views x, y: (N, D) whose rows i form the positive pairs.
inline alignment_uniformity_result alignment_uniformity(const tensor<cpu>& x, const tensor<cpu>& y, double alpha = 2.0,
                                                        double t = 2.0) {
  alignment_uniformity_result r;
  r.alignment = alignment(x, y, alpha);
  r.uniformity_x = uniformity(x, t);
  r.uniformity_y = uniformity(y, t);
  r.uniformity = (r.uniformity_x + r.uniformity_y) / 2;
  return r;
}

}  // namespace ssl::eval
