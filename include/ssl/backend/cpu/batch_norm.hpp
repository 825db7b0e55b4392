#pragma once
// Batch normalisation on the CPU, per channel c over M = N * H * W values
// (x is (N, C) or (N, C, H, W)). Every pass over x sweeps it image by image (parallel over the
// batch): per-row sums first, merged per channel in image order (parallel over channels).
//   train: mu = mean(x), var = mean((x - mu)^2) (biased), xhat = (x - mu) / sqrt(var + eps)
//          (backward keeps x, mu and invstd and recomputes xhat: one tensor fewer per layer)
//   eval:  xhat = (x - running_mean) / sqrt(running_var + eps)
//   y = gamma * xhat + beta, optionally followed by ReLU (fused: saves a pass and a tensor).
// Backward (train), g = dy (masked by y > 0 when ReLU is fused):
//   dbeta += Σ g,  dgamma += Σ g * xhat
//   dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat))
#include <functional>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"

namespace ssl::ops {

/// Layout of a batch-norm input: `channels` channels, each seen as `batch` runs of `inner` values.
struct batch_norm_layout {
  int64_t batch = 0, channels = 0, inner = 1;
  int64_t count() const { return batch * inner; }  // M: values per channel
};

inline batch_norm_layout batch_norm_layout_of(const shape& x, int64_t channels, const char* what = "batch_norm") {
  check<shape_error>(x.rank() == 2 || x.rank() == 4, what, ": expected input (N, ", channels, ") or (N, ", channels,
                     ", H, W), got shape ", x);
  check<shape_error>(x[1] == channels, what, ": expected ", channels, " channels (dimension 1), got shape ", x);
  batch_norm_layout l;
  l.batch = x[0];
  l.channels = channels;
  l.inner = x.rank() == 4 ? x[2] * x[3] : 1;
  return l;
}

namespace detail {

// Row kernels on 8-float vectors (GCC/Clang vector extensions, lowered to AVX or SSE): explicit
// lanes keep the sums vectorised wherever the kernel is inlined (auto-vectorisation of the same
// loops was lost in some callers), and each lane is its own accumulator, so no -ffast-math is
// needed. Lanes are added at the end of a row; rows are accumulated in double by the caller.
using vf8 = float __attribute__((vector_size(32)));
inline vf8 load8(const float* p) {
  vf8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, vf8 v) { std::memcpy(p, &v, sizeof v); }
inline float lane_sum(vf8 v) {
  float t = 0.0f;
  for (int k = 0; k < 8; ++k) t += v[k];
  return t;
}
inline vf8 splat8(float x) { return vf8{x, x, x, x, x, x, x, x}; }

/// Σ_i x[i] (squares = false) or Σ_i (x[i] - mu)^2 (squares = true) over one row of n values.
inline float bn_row_sum(const float* x, int64_t n, float mu, bool squares) {
  vf8 acc = splat8(0.0f);
  const vf8 m = splat8(mu);
  int64_t i = 0;
  if (squares) {
    for (; i + 8 <= n; i += 8) {
      const vf8 d = load8(x + i) - m;
      acc += d * d;
    }
  } else {
    for (; i + 8 <= n; i += 8) acc += load8(x + i);
  }
  float total = lane_sum(acc);
  for (; i < n; ++i) total += squares ? (x[i] - mu) * (x[i] - mu) : x[i];
  return total;
}

/// Backward sums over one row: sg = Σ g, sgx = Σ g (x - mu), g = dy masked by the fused ReLU
/// (x zs + zo > 0) when Relu.
template <bool Relu>
inline void bn_row_grad_sums(const float* x, const float* dy, int64_t n, float zs, float zo, float mu, float& sg,
                             float& sgx) {
  vf8 a = splat8(0.0f), b = splat8(0.0f);
  const vf8 vzs = splat8(zs), vzo = splat8(zo), vmu = splat8(mu), zero = splat8(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const vf8 xv = load8(x + i);
    vf8 g = load8(dy + i);
    if constexpr (Relu) g = xv * vzs + vzo > zero ? g : zero;
    a += g;
    b += g * (xv - vmu);
  }
  float sa = lane_sum(a), sb = lane_sum(b);
  for (; i < n; ++i) {
    const float xv = x[i], d = dy[i];
    const float g = Relu ? (xv * zs + zo > 0.0f ? d : 0.0f) : d;
    sa += g;
    sb += g * (xv - mu);
  }
  sg = sa;
  sgx = sb;
}

/// dx[i] = g[i] a + x[i] cx + b over one row (g = dy masked as in bn_row_grad_sums).
template <bool Relu>
inline void bn_row_grad_apply(const float* x, const float* dy, int64_t n, float zs, float zo, float a, float cx, float b,
                              float* dx) {
  const vf8 vzs = splat8(zs), vzo = splat8(zo), va = splat8(a), vcx = splat8(cx), vb = splat8(b), zero = splat8(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const vf8 xv = load8(x + i);
    vf8 g = load8(dy + i);
    if constexpr (Relu) g = xv * vzs + vzo > zero ? g : zero;
    store8(dx + i, g * va + xv * vcx + vb);
  }
  for (; i < n; ++i) {
    const float xv = x[i], d = dy[i];
    const float g = Relu ? (xv * zs + zo > 0.0f ? d : 0.0f) : d;
    dx[i] = g * a + xv * cx + b;
  }
}

/// y[i] = x[i] scale + offset, then max(0, .) when Relu.
template <bool Relu>
inline void bn_row_affine(const float* x, int64_t n, float scale, float offset, float* y) {
  const vf8 vs = splat8(scale), vo = splat8(offset), zero = splat8(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    vf8 v = load8(x + i) * vs + vo;
    if constexpr (Relu) v = v > zero ? v : zero;
    store8(y + i, v);
  }
  for (; i < n; ++i) {
    const float v = x[i] * scale + offset;
    y[i] = Relu ? (v > 0.0f ? v : 0.0f) : v;
  }
}

/// Scratch of the calling thread (grown once, reused: no allocation per call in steady state):
/// per-row statistics (N * C pairs, double) and per-channel coefficients (slots of C floats).
inline std::vector<double>& bn_workspace(size_t n) {
  thread_local std::vector<double> ws;
  if (ws.size() < n) ws.resize(n);
  return ws;
}
inline std::vector<float>& bn_coefficients(int slot, size_t n) {
  thread_local std::vector<float> ws[5];
  if (ws[slot].size() < n) ws[slot].resize(n);
  return ws[slot];
}

/// y[n, c, :] = x[n, c, :] scale[c] + offset[c] (then ReLU), image by image (sequential sweeps).
inline void bn_apply_affine(const tensor<cpu>& x, const batch_norm_layout& l, const std::vector<float>& scale,
                            const std::vector<float>& offset, bool fuse_relu, tensor<cpu>& y) {
  const int64_t C = l.channels, S = C * l.inner;
  parallel_for(0, l.batch, [&](int64_t n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t off = n * S + c * l.inner;
      if (fuse_relu)
        bn_row_affine<true>(x.data() + off, l.inner, scale[size_t(c)], offset[size_t(c)], y.data() + off);
      else
        bn_row_affine<false>(x.data() + off, l.inner, scale[size_t(c)], offset[size_t(c)], y.data() + off);
    }
  }, l.inner > 1 ? 1 : 64);
}
}  // namespace detail

/// SyncBatchNorm's reduction: sums a float buffer over the data-parallel replicas in place (every
/// replica gets the same sums). Given to the train-mode ops, it makes the batch statistics those of
/// the replicas' batches together (dist/sync_batch_norm.hpp sets it from a communicator).
using batch_norm_all_reduce = std::function<void(float*, int64_t)>;

/// Train-mode forward. Writes y (x's shape), the batch mean and biased variance (C) and
/// invstd = 1 / sqrt(var + eps) (C). Backward recomputes xhat from x, mean and invstd.
/// Statistics: per row of `inner` values its mean and squared deviations (vectorised float sums,
/// the row's second read hits L1), merged across rows in image order in double.
/// With `sync` the statistics cover every replica's batch (two reductions: the sums, for the global
/// mean mu; then each replica's squared deviations about mu, M2_r + n_r (mean_r - mu)^2).
/// Returns the number of values per channel the statistics cover (all replicas' with sync).
inline int64_t batch_norm_forward_train(const tensor<cpu>& x, const tensor<cpu>& gamma, const tensor<cpu>& beta,
                                        float eps, bool fuse_relu, tensor<cpu>& y, std::vector<float>& mean,
                                        std::vector<float>& var, std::vector<float>& invstd,
                                        const batch_norm_all_reduce* sync = nullptr) {
  const int64_t C = gamma.numel();
  const batch_norm_layout l = batch_norm_layout_of(x.shape(), C);
  check<value_error>(l.count() > 1, "batch_norm: expected more than 1 value per channel in training, got input shape ",
                     x.shape());
  if (!(y.shape() == x.shape())) y = tensor<cpu>(x.shape());
  mean.assign(size_t(C), 0.0f);
  var.assign(size_t(C), 0.0f);
  invstd.assign(size_t(C), 0.0f);
  const int64_t M = l.count(), S = C * l.inner;
  // Per-row statistics: the mean m_r and squared deviations M2_r of each row (n, c) of `inner`
  // values. With rows longer than one value they are computed image by image (parallel over n), a
  // sequential sweep over memory; a channel-major sweep would touch one short row per image and
  // stall on DRAM latency (the 4x4 maps of ConvNet-S's last stage are one cache line per row).
  std::vector<double>& row_stats = detail::bn_workspace(size_t(l.batch * C * 2));
  auto row_statistics = [&](int64_t n, int64_t c) {
    const float* row = x.data() + n * S + c * l.inner;
    const float row_mean = detail::bn_row_sum(row, l.inner, 0.0f, false) / float(l.inner);
    row_stats[size_t((n * C + c) * 2)] = row_mean;
    row_stats[size_t((n * C + c) * 2 + 1)] = detail::bn_row_sum(row, l.inner, row_mean, true);
  };
  if (l.inner > 1)
    parallel_for(0, l.batch, [&](int64_t n) {
      for (int64_t c = 0; c < C; ++c) row_statistics(n, c);
    });
  std::vector<float>& scale = detail::bn_coefficients(0, size_t(C));
  std::vector<float>& offset = detail::bn_coefficients(1, size_t(C));
  auto finish_channel = [&](int64_t c, double mean_c, double m2, int64_t total) {
    const float mu = float(mean_c);
    const double v = m2 / double(total);
    const float is = float(1.0 / std::sqrt(v + double(eps)));
    mean[size_t(c)] = mu;
    var[size_t(c)] = float(v);
    invstd[size_t(c)] = is;
    scale[size_t(c)] = gamma[c] * is;
    offset[size_t(c)] = beta[c] - mu * scale[size_t(c)];
  };
  std::vector<double> local_mean(sync ? size_t(C) : 0), local_m2(sync ? size_t(C) : 0);
  parallel_for(0, C, [&](int64_t c) {
    // Rows merged in image order, in double, with Chan et al.'s pairwise update:
    //   delta = m_r - mean,  mean += delta k / (n + k),  M2 += M2_r + delta^2 n k / (n + k).
    double mean_c = 0, m2 = 0, count = 0;
    const double k = double(l.inner);
    for (int64_t n = 0; n < l.batch; ++n) {
      if (l.inner == 1) row_statistics(n, c);
      const double row_mean = row_stats[size_t((n * C + c) * 2)], row_m2 = row_stats[size_t((n * C + c) * 2 + 1)];
      const double delta = row_mean - mean_c, total = count + k;
      mean_c += delta * k / total;
      m2 += row_m2 + delta * delta * count * k / total;
      count = total;
    }
    if (sync) {
      local_mean[size_t(c)] = mean_c;
      local_m2[size_t(c)] = m2;
    } else {
      finish_channel(c, mean_c, m2, M);
    }
  }, 4);
  int64_t total = M;
  if (sync) {
    // sums and count over the replicas -> mu; then the squared deviations about mu -> M2
    std::vector<float> buf(static_cast<size_t>(C + 1));
    for (int64_t c = 0; c < C; ++c) buf[size_t(c)] = float(local_mean[size_t(c)] * double(M));
    buf[size_t(C)] = float(M);
    (*sync)(buf.data(), C + 1);
    total = int64_t(std::llround(buf[size_t(C)]));
    std::vector<double> mu(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      mu[size_t(c)] = double(buf[size_t(c)]) / double(total);
      const double d = local_mean[size_t(c)] - mu[size_t(c)];
      buf[size_t(c)] = float(local_m2[size_t(c)] + double(M) * d * d);
    }
    (*sync)(buf.data(), C);
    for (int64_t c = 0; c < C; ++c) finish_channel(c, mu[size_t(c)], double(buf[size_t(c)]), total);
  }
  detail::bn_apply_affine(x, l, scale, offset, fuse_relu, y);
  return total;
}

/// Eval-mode forward with given statistics: y = gamma * (x - mean) / sqrt(var + eps) + beta (then ReLU if fused).
inline void batch_norm_forward_eval(const tensor<cpu>& x, const tensor<cpu>& gamma, const tensor<cpu>& beta,
                                    const tensor<cpu>& running_mean, const tensor<cpu>& running_var, float eps,
                                    bool fuse_relu, tensor<cpu>& y) {
  const int64_t C = gamma.numel();
  const batch_norm_layout l = batch_norm_layout_of(x.shape(), C);
  if (!(y.shape() == x.shape())) y = tensor<cpu>(x.shape());
  std::vector<float>& scale = detail::bn_coefficients(0, size_t(C));
  std::vector<float>& offset = detail::bn_coefficients(1, size_t(C));
  for (int64_t c = 0; c < C; ++c) {
    scale[size_t(c)] = gamma[c] / std::sqrt(running_var[c] + eps);
    offset[size_t(c)] = beta[c] - running_mean[c] * scale[size_t(c)];
  }
  detail::bn_apply_affine(x, l, scale, offset, fuse_relu, y);
}

/// Train-mode backward from the saved input x and its batch mean / invstd (xhat is recomputed).
/// Accumulates dgamma, dbeta (+=); writes dx. With fuse_relu, dy is masked by gamma * xhat + beta > 0.
/// dx may be dy itself (in place): the sums over dy are complete before the elementwise pass writes dx.
/// With `sync` (SyncBatchNorm) the sums sum(g) and sum(g xhat) of every replica are added before dx
/// (PyTorch's SyncBatchNorm; dgamma, dbeta stay this replica's), and `count` is the number of values
/// per channel over all replicas, as the forward returned.
inline void batch_norm_backward_train(const tensor<cpu>& dy, const tensor<cpu>& x, const std::vector<float>& mean,
                                      const std::vector<float>& invstd, const tensor<cpu>& gamma,
                                      const tensor<cpu>& beta, bool fuse_relu, tensor<cpu>& dx, tensor<cpu>& dgamma,
                                      tensor<cpu>& dbeta, const batch_norm_all_reduce* sync = nullptr,
                                      int64_t count = 0) {
  const int64_t C = gamma.numel();
  const batch_norm_layout l = batch_norm_layout_of(x.shape(), C);
  expect_shape(dy, x.shape(), "batch_norm backward dy");
  check<shape_error>(int64_t(invstd.size()) == C && int64_t(mean.size()) == C, "batch_norm backward: expected ", C,
                     " saved mean and invstd values, got ", mean.size(), " and ", invstd.size());
  if (!(dx.shape() == x.shape())) dx = tensor<cpu>(x.shape());
  const int64_t M = l.count(), S = C * l.inner;
  // Per channel: ReLU input z = gamma * xhat + beta > 0  <=>  x * zs + zo > 0
  std::vector<float>& zs = detail::bn_coefficients(0, size_t(C));
  std::vector<float>& zo = detail::bn_coefficients(1, size_t(C));
  for (int64_t c = 0; c < C; ++c) {
    zs[size_t(c)] = gamma[c] * invstd[size_t(c)];
    zo[size_t(c)] = beta[c] - mean[size_t(c)] * zs[size_t(c)];
  }
  // Per-row sums Σ g and Σ g (x - mu), image by image (sequential sweeps, as in the forward).
  std::vector<double>& row_sums = detail::bn_workspace(size_t(l.batch * C * 2));
  auto row_grad_sums = [&](int64_t n, int64_t c) {
    const int64_t off = n * S + c * l.inner;
    float rg, rgx;
    if (fuse_relu)
      detail::bn_row_grad_sums<true>(x.data() + off, dy.data() + off, l.inner, zs[size_t(c)], zo[size_t(c)],
                                     mean[size_t(c)], rg, rgx);
    else
      detail::bn_row_grad_sums<false>(x.data() + off, dy.data() + off, l.inner, zs[size_t(c)], zo[size_t(c)],
                                      mean[size_t(c)], rg, rgx);
    row_sums[size_t((n * C + c) * 2)] = rg;
    row_sums[size_t((n * C + c) * 2 + 1)] = rgx;
  };
  if (l.inner > 1)
    parallel_for(0, l.batch, [&](int64_t n) {
      for (int64_t c = 0; c < C; ++c) row_grad_sums(n, c);
    });
  std::vector<float>& ca = detail::bn_coefficients(2, size_t(C));
  std::vector<float>& cb = detail::bn_coefficients(3, size_t(C));
  std::vector<float>& cx = detail::bn_coefficients(4, size_t(C));
  auto coefficients = [&](int64_t c, double sg, double sgx, int64_t total) {
    const float mu = mean[size_t(c)], is = invstd[size_t(c)];
    const float mg = float(sg / double(total)), mgx = float(sgx / double(total));
    const float k = gamma[c] * is;
    // dx = k * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - mu) * is  =  g a + x cx + b
    ca[size_t(c)] = k;
    cb[size_t(c)] = -k * (mg - mu * is * mgx);
    cx[size_t(c)] = -k * is * mgx;
  };
  std::vector<float> sums(sync ? size_t(2 * C) : 0);
  parallel_for(0, C, [&](int64_t c) {
    double sg = 0, sgx = 0;  // rows summed in image order, in double
    for (int64_t n = 0; n < l.batch; ++n) {
      if (l.inner == 1) row_grad_sums(n, c);
      sg += row_sums[size_t((n * C + c) * 2)];
      sgx += row_sums[size_t((n * C + c) * 2 + 1)];
    }
    sgx *= invstd[size_t(c)];  // Σ g * xhat
    dbeta[c] += float(sg);
    dgamma[c] += float(sgx);
    if (sync) {
      sums[size_t(c)] = float(sg);
      sums[size_t(C + c)] = float(sgx);
    } else {
      coefficients(c, sg, sgx, M);
    }
  }, 4);
  if (sync) {
    check<value_error>(count >= M, "batch_norm backward: the synchronised count (", count,
                       ") must cover this replica's ", M, " values per channel");
    (*sync)(sums.data(), 2 * C);
    for (int64_t c = 0; c < C; ++c) coefficients(c, sums[size_t(c)], sums[size_t(C + c)], count);
  }
  parallel_for(0, l.batch, [&](int64_t n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t off = n * S + c * l.inner;
      const size_t i = size_t(c);
      if (fuse_relu)
        detail::bn_row_grad_apply<true>(x.data() + off, dy.data() + off, l.inner, zs[i], zo[i], ca[i], cx[i], cb[i],
                                        dx.data() + off);
      else
        detail::bn_row_grad_apply<false>(x.data() + off, dy.data() + off, l.inner, zs[i], zo[i], ca[i], cx[i], cb[i],
                                         dx.data() + off);
    }
  }, l.inner > 1 ? 1 : 64);
}

/// Running-statistics update after a train-mode batch of M values per channel:
///   running = (1 - momentum) * running + momentum * batch   (unbiased variance: var * M / (M - 1))
/// where momentum = 1 / num_batches_tracked for a cumulative average (PyTorch momentum=None).
inline void batch_norm_update_running(tensor<cpu>& running_mean, tensor<cpu>& running_var,
                                      const std::vector<float>& mean, const std::vector<float>& var, int64_t count,
                                      float momentum) {
  const float unbias = float(double(count) / double(count - 1));
  for (int64_t c = 0; c < running_mean.numel(); ++c) {
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[size_t(c)];
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * var[size_t(c)] * unbias;
  }
}

}  // namespace ssl::ops
