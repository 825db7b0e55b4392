#pragma once
// drop_path<B>: stochastic depth per sample (timm's DropPath), for residual branches.
//   x: (N, ...) -> y[n] = x[n] * m_n,  m_n = 0 with probability p, else 1/(1-p);  infer: identity.
//   backward: dx[n] = dy[n] * m_n.  p = 0 is a free identity (no mask is drawn).
// Reproducible: the k-th training forward (k = 0, 1, ...) draws its N keep decisions from
// rng(seed).fork(k); the call counter is the module's only mutable state (like dropout).
// The keep decisions are drawn on the host on every backend (the same masks on the GPU); on the
// device the rows are scaled by ops::scale_rows (backend/cuda/vit_ops.cuh).
#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/rng.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"  // ops::scale_rows on tensor<cuda>
#endif

namespace ssl {

template <class B = cpu>
class drop_path {
 public:
  using backend_type = B;
  /// What backward needs: the per-sample scale m_n (empty when nothing was dropped).
  struct saved_type {
    std::vector<float> scale;
  };

  explicit drop_path(float p = 0.0f, uint64_t seed = 0) : p_(p), seed_(seed) {
    check<value_error>(p >= 0.0f && p < 1.0f, "drop_path: expected a drop probability in [0, 1), got ", p);
  }

  float p() const { return p_; }
  /// A new drop probability (e.g. stochastic depth switched on to fine-tune a pretrained encoder).
  void set_p(float p) {
    check<value_error>(p >= 0.0f && p < 1.0f, "drop_path: expected a drop probability in [0, 1), got ", p);
    p_ = p;
  }
  uint64_t calls() const { return calls_; }
  void set_calls(uint64_t k) { calls_ = k; }

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  output<saved_type, B> forward(tensor<B>&& x) {
    const uint64_t k = calls_++;
    if (p_ == 0.0f) return {std::move(x), saved_type{}};
    check<shape_error>(x.rank() >= 1, "drop_path: expected a batch (N, ...), got ", x.shape());
    saved_type s;
    rng g = rng(seed_).fork(k);
    for (int64_t n = 0; n < x.dim(0); ++n) s.scale.push_back(g.uniform() >= p_ ? 1.0f / (1.0f - p_) : 0.0f);
    scale_rows(x, s.scale);
    return {std::move(x), std::move(s)};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    if (s.scale.empty()) return dy;
    check<shape_error>(dy.rank() >= 1 && dy.dim(0) == int64_t(s.scale.size()), "drop_path::backward: expected dy with ",
                       s.scale.size(), " samples, got ", dy.shape());
    tensor<B> dx = dy;
    scale_rows(dx, s.scale);
    return dx;
  }
  tensor<B> infer(const tensor<B>& x) const { return x; }
  void collect(param_list<B>&, const std::string&) {}

 private:
  static void scale_rows(tensor<B>& x, const std::vector<float>& scale) {
    if constexpr (std::same_as<B, cpu>) {
      const int64_t N = x.dim(0), R = x.numel() / N;
      parallel_for(0, N, [&](int64_t n) {
        float* r = x.data() + n * R;
        for (int64_t i = 0; i < R; ++i) r[i] *= scale[size_t(n)];
      }, 8);
    } else {
#if defined(__CUDACC__)
      ops::scale_rows(x, scale);  // device only: no CPU overload, hence the guard
#endif
    }
  }

  float p_ = 0.0f;
  uint64_t seed_ = 0;
  uint64_t calls_ = 0;
};

}  // namespace ssl
