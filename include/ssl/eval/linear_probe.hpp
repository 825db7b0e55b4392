#pragma once
// Linear probe: multinomial logistic regression on frozen features (WORKLOADS.md protocol).
//   features standardised with the train mean / std (std clamped >= 1e-6)
//   logits Z = X W^T + b                       X: (N, D), W: (C, D), b: (C)
//   loss   = mean_i CE(Z_i, y_i) + (lambda/2) ||W||^2      (bias not decayed)
//   dZ     = (softmax(Z) - onehot(y)) / N,  dW = dZ^T X + lambda W,  db = sum_i dZ_i
// minimised by full-batch L-BFGS (torch.optim.LBFGS semantics, strong Wolfe) from W = 0, b = 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "../backend/cpu/gemm.hpp"
#include "../core/parallel.hpp"
#include "lbfgs.hpp"
#include "labels.hpp"

namespace ssl::eval {

struct linear_probe_options {
  double weight_decay = 1e-4;  // lambda
  int num_classes = 0;         // 0: 1 + the largest train label
  lbfgs_options lbfgs{};       // lr 1, max_iter 500, history 20, tolerances 1e-6 / 1e-9
};

/// Per-feature standardisation fitted on the train features.
struct standardizer {
  std::vector<float> mean, inv_std;  // (D)

  /// Mean and std of each column of x: (N, D). The std is torch's default (unbiased, divides by N - 1).
  static standardizer fit(const tensor<cpu>& x) {
    expect_rank(x, 2, "standardizer::fit features");
    const int64_t n = x.dim(0), dim = x.dim(1);
    check(n >= 2, "standardizer::fit: need at least 2 rows, got ", n);
    std::vector<double> s(size_t(dim), 0.0), s2(size_t(dim), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const float* r = x.data() + i * dim;
      for (int64_t j = 0; j < dim; ++j) s[j] += r[j];
    }
    standardizer st;
    st.mean.resize(size_t(dim));
    st.inv_std.resize(size_t(dim));
    for (int64_t j = 0; j < dim; ++j) st.mean[j] = float(s[j] / double(n));
    for (int64_t i = 0; i < n; ++i) {
      const float* r = x.data() + i * dim;
      for (int64_t j = 0; j < dim; ++j) {
        const double c = double(r[j]) - st.mean[j];
        s2[j] += c * c;
      }
    }
    for (int64_t j = 0; j < dim; ++j) st.inv_std[j] = float(1.0 / std::max(std::sqrt(s2[j] / double(n - 1)), 1e-6));
    return st;
  }
  /// (x - mean) / std, row by row. x: (N, D) -> (N, D)
  tensor<cpu> apply(const tensor<cpu>& x) const {
    expect_rank(x, 2, "standardizer::apply features");
    check<shape_error>(x.dim(1) == int64_t(mean.size()), "standardizer::apply: expected ", mean.size(),
                       " features per row, got ", x.dim(1));
    tensor<cpu> out(x.shape());
    const int64_t dim = x.dim(1);
    parallel_for(0, x.dim(0), [&](int64_t i) {
      const float* r = x.data() + i * dim;
      float* o = out.data() + i * dim;
      for (int64_t j = 0; j < dim; ++j) o[j] = (r[j] - mean[j]) * inv_std[j];
    }, 256);
    return out;
  }
};

/// The probe objective at (W, b) on standardised features x: (N, D) with labels y.
/// Writes dW: (C, D) and db: (C) when they are non-null. Returns the loss (double).
/// Rows are processed in fixed blocks of `block_rows`, in parallel over blocks; each block runs
/// serial GEMMs (Z_blk = X_blk W^T, dW_blk = dZ_blk^T X_blk while X_blk is in cache) and the
/// per-block partial sums are added in block order, so the result does not depend on the
/// number of threads (and no threaded GEMM has to synchronise inside a block).
inline double logistic_objective(const tensor<cpu>& x, std::span<const int> y, const tensor<cpu>& w,
                                 const tensor<cpu>& b, double weight_decay, tensor<cpu>* dw = nullptr,
                                 tensor<cpu>* db = nullptr, int64_t block_rows = 2048) {
  expect_rank(x, 2, "logistic_objective features");
  expect_rank(w, 2, "logistic_objective W");
  const int64_t n = x.dim(0), dim = x.dim(1), c = w.dim(0);
  check<shape_error>(w.dim(1) == dim, "logistic_objective: W is ", w.shape(), ", expected (C, ", dim, ")");
  expect_shape(b, shape{c}, "logistic_objective b");
  check<shape_error>(int64_t(y.size()) == n, "logistic_objective: ", n, " feature rows but ", y.size(), " labels");
  check(block_rows >= 1, "logistic_objective: block_rows must be >= 1, got ", block_rows);
  const bool grads = dw != nullptr || db != nullptr;
  const int64_t blocks = std::max<int64_t>(1, (n + block_rows - 1) / block_rows);
  std::vector<double> block_loss(static_cast<size_t>(blocks), 0.0);
  // per block: dW partial (C, D) then db partial (C)
  std::vector<float> partial(grads ? static_cast<size_t>(blocks * (c * dim + c)) : 0);
  parallel_for(0, blocks, [&](int64_t blk) {
    const int64_t r0 = blk * block_rows, rows = std::min(block_rows, n - r0);
    if (rows <= 0) return;
    const float* xb = x.data() + r0 * dim;
    // Z = X_blk W^T + b: (rows, C)
    std::vector<float> z(static_cast<size_t>(rows * c));
    for (int64_t i = 0; i < rows; ++i) std::copy_n(b.data(), c, z.data() + i * c);
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, rows, c, dim, 1.0f, xb, dim, w.data(), dim, 1.0f, z.data(), c);
    // cross-entropy per row; z becomes dZ = (softmax - onehot) / N
    std::vector<double> e(static_cast<size_t>(c));
    double loss = 0;
    for (int64_t i = 0; i < rows; ++i) {
      float* zi = z.data() + i * c;
      const int yi = y[size_t(r0 + i)];
      double m = zi[0];
      for (int64_t k = 1; k < c; ++k) m = std::max(m, double(zi[k]));
      double se = 0;
      for (int64_t k = 0; k < c; ++k) se += (e[k] = std::exp(double(zi[k]) - m));
      loss += m + std::log(se) - double(zi[yi]);
      for (int64_t k = 0; k < c; ++k) zi[k] = float((e[k] / se - (k == yi ? 1.0 : 0.0)) / double(n));
    }
    block_loss[size_t(blk)] = loss;
    if (!grads) return;
    float* pw = partial.data() + blk * (c * dim + c);
    // dW_blk = dZ_blk^T X_blk: (C, D);  db_blk = sum_i dZ_i
    ops::gemm(cpu{}, ops::trans::yes, ops::trans::no, c, dim, rows, 1.0f, z.data(), c, xb, dim, 0.0f, pw, dim);
    float* pb = pw + c * dim;
    for (int64_t k = 0; k < c; ++k) pb[k] = 0.0f;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t k = 0; k < c; ++k) pb[k] += z[size_t(i * c + k)];
  }, 1);
  double loss = 0, w2 = 0;
  for (double l : block_loss) loss += l;
  for (int64_t i = 0; i < w.numel(); ++i) w2 += double(w[i]) * double(w[i]);
  loss = loss / double(n) + 0.5 * weight_decay * w2;
  if (dw) {
    // dW = sum_blk dW_blk + lambda W
    *dw = tensor<cpu>(w.shape());
    for (int64_t i = 0; i < c * dim; ++i) {
      double acc = weight_decay * double(w[i]);
      for (int64_t blk = 0; blk < blocks; ++blk) acc += partial[size_t(blk * (c * dim + c) + i)];
      (*dw)[i] = float(acc);
    }
  }
  if (db) {
    *db = tensor<cpu>(shape{c});
    for (int64_t k = 0; k < c; ++k) {
      double acc = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) acc += partial[size_t(blk * (c * dim + c) + c * dim + k)];
      (*db)[k] = float(acc);
    }
  }
  return loss;
}

/// A fitted probe: standardiser plus the linear classifier.
struct linear_probe_model {
  standardizer scaler;
  tensor<cpu> weight;  // (C, D)
  tensor<cpu> bias;    // (C)

  /// Class with the largest logit for each row of raw (unstandardised) features x: (N, D).
  std::vector<int> predict(const tensor<cpu>& x) const {
    const tensor<cpu> xs = scaler.apply(x);
    const int64_t n = xs.dim(0), dim = xs.dim(1), c = weight.dim(0);
    tensor<cpu> z(shape{n, c});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, n, c, dim, 1.0f, xs.data(), dim, weight.data(), dim, 0.0f,
              z.data(), c);
    std::vector<int> pred(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int best = 0;
      for (int64_t k = 1; k < c; ++k)
        if (z[i * c + k] + bias[k] > z[i * c + best] + bias[best]) best = int(k);  // first maximum wins ties
      pred[size_t(i)] = best;
    }
    return pred;
  }
};

struct linear_probe_result {
  double train_accuracy = 0;  // top-1 in [0, 1]
  double test_accuracy = 0;
  double final_loss = 0;      // objective at the solution
  lbfgs_result optimizer{};
  linear_probe_model model;
};

/// Fits the probe on (train_x, train_y) and measures top-1 on train and test.
/// train_x: (N, D), test_x: (M, D); labels in [0, C).
inline linear_probe_result linear_probe(const tensor<cpu>& train_x, std::span<const int> train_y,
                                        const tensor<cpu>& test_x, std::span<const int> test_y,
                                        const linear_probe_options& o = {}) {
  expect_rank(train_x, 2, "linear_probe train features");
  expect_rank(test_x, 2, "linear_probe test features");
  check<shape_error>(train_x.dim(1) == test_x.dim(1), "linear_probe: train features have dimension ", train_x.dim(1),
                     " but test features have ", test_x.dim(1));
  check<shape_error>(int64_t(train_y.size()) == train_x.dim(0), "linear_probe: ", train_x.dim(0),
                     " train rows but ", train_y.size(), " train labels");
  check<shape_error>(int64_t(test_y.size()) == test_x.dim(0), "linear_probe: ", test_x.dim(0), " test rows but ",
                     test_y.size(), " test labels");
  check(o.weight_decay >= 0, "linear_probe: weight_decay must be >= 0, got ", o.weight_decay);
  const int c = o.num_classes > 0 ? o.num_classes : detail::max_label(train_y, "linear_probe train labels") + 1;
  detail::check_labels(train_y, c, "linear_probe train labels");
  detail::check_labels(test_y, c, "linear_probe test labels");
  const int64_t dim = train_x.dim(1);

  linear_probe_result res;
  res.model.scaler = standardizer::fit(train_x);
  const tensor<cpu> xs = res.model.scaler.apply(train_x);

  // parameters flattened as [W (C*D), b (C)]
  const int64_t nw = int64_t(c) * dim;
  tensor<cpu> w(shape{c, dim}), b(shape{c}), dw, db;
  auto objective = [&](const std::vector<double>& p, std::vector<double>& grad) {
    for (int64_t i = 0; i < nw; ++i) w[i] = float(p[size_t(i)]);
    for (int64_t k = 0; k < c; ++k) b[k] = float(p[size_t(nw + k)]);
    const double f = logistic_objective(xs, train_y, w, b, o.weight_decay, &dw, &db);
    for (int64_t i = 0; i < nw; ++i) grad[size_t(i)] = dw[i];
    for (int64_t k = 0; k < c; ++k) grad[size_t(nw + k)] = db[k];
    return f;
  };
  std::vector<double> p(size_t(nw + c), 0.0);
  res.optimizer = lbfgs_minimize(objective, p, o.lbfgs);
  res.final_loss = res.optimizer.loss;
  for (int64_t i = 0; i < nw; ++i) w[i] = float(p[size_t(i)]);
  for (int64_t k = 0; k < c; ++k) b[k] = float(p[size_t(nw + k)]);
  res.model.weight = std::move(w);
  res.model.bias = std::move(b);
  res.train_accuracy = detail::accuracy(res.model.predict(train_x), train_y);
  res.test_accuracy = detail::accuracy(res.model.predict(test_x), test_y);
  return res;
}

}  // namespace ssl::eval
