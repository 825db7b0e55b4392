#pragma once
// dino_head<B>: DINO's projection head (Caron et al. 2021, DINOHead of the official code).
//   x (N, in) -> Linear(in, hidden) -> GELU -> [Linear(hidden, hidden) -> GELU] x (layers - 2)
//             -> Linear(hidden, bottleneck)                              h (N, bottleneck)
//   n = h / max(|h|, 1e-12)                                              (N, bottleneck)
//   W = g v / |v|  (weight norm per output row),  y = n W^T              (N, out), no bias
// layers = 1 is a single Linear(in, bottleneck). With norm_last_layer (DINO's default) g is fixed
// to 1 and frozen (the optimizer skips it; its gradient is still computed, so unfreezing works).
// Names follow the PyTorch module: mlp.0.weight, mlp.0.bias, mlp.2.* ..., last_layer.weight_g
// (out, 1), last_layer.weight_v (out, bottleneck).
// Init (official code): MLP linears trunc_normal(0.02), bias 0; weight_v PyTorch's default Linear
// init U(+-1/sqrt(bottleneck)); weight_g = 1.
// freeze_last_layer / zero_last_layer_grad: DINO freezes the last layer during the first epoch.
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/weight_norm.hpp"
#include "../nn/gelu.hpp"
#include "../nn/linear.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/weight_norm.cuh"
#endif

namespace ssl {

struct dino_head_options {
  int64_t in_dim = 192;
  int64_t hidden_dim = 512;
  int64_t bottleneck_dim = 128;
  int64_t out_dim = 4096;
  int layers = 3;
  bool norm_last_layer = true;  // weight_g fixed to 1 (frozen)

  /// WORKLOADS.md W3: 192 -> 512 -> 512 -> 128 -> 4096.
  static dino_head_options w3() { return {}; }
};

template <class B = cpu>
class dino_head {
 public:
  using backend_type = B;
  static constexpr bool is_head = true;

  struct saved_type {
    std::vector<typename linear<B>::saved_type> lin;
    std::vector<typename gelu<B>::saved_type> act;
    tensor<B> n;      // normalised bottleneck (N, bottleneck)
    tensor<B> norms;  // |h_i| (N)
  };

  dino_head() = default;
  explicit dino_head(const dino_head_options& o, rng gen = rng(0)) : opt_(o) {
    check<value_error>(o.layers >= 1 && o.in_dim > 0 && o.hidden_dim > 0 && o.bottleneck_dim > 0 && o.out_dim > 0,
                       "dino_head: expected layers >= 1 and positive widths, got layers = ", o.layers, ", in ", o.in_dim,
                       ", hidden ", o.hidden_dim, ", bottleneck ", o.bottleneck_dim, ", out ", o.out_dim);
    for (int i = 0; i < o.layers; ++i) {
      const int64_t in = i == 0 ? o.in_dim : o.hidden_dim;
      const int64_t out = i == o.layers - 1 ? o.bottleneck_dim : o.hidden_dim;
      lin_.emplace_back(in, out, true, gen.fork(uint64_t(i)));
      lin_.back().reset_trunc_normal(0.02f, gen.fork(100 + uint64_t(i)));
    }
    weight_v_ = parameter<B>(shape{o.out_dim, o.bottleneck_dim}, param_kind::weight);
    rng vg = gen.fork(1000);
    const float bound = 1.0f / std::sqrt(float(o.bottleneck_dim));
    init::uniform(weight_v_.value, vg, -bound, bound);
    weight_g_ = parameter<B>(shape{o.out_dim, 1}, param_kind::weight);
    weight_g_.value.fill(1.0f);
    weight_g_.frozen = o.norm_last_layer;
  }

  int64_t in_dim() const { return opt_.in_dim; }
  int64_t out_dim() const { return opt_.out_dim; }
  const dino_head_options& options() const { return opt_; }
  parameter<B>& weight_v() { return weight_v_; }
  parameter<B>& weight_g() { return weight_g_; }
  linear<B>& mlp_layer(int i) { return lin_.at(size_t(i)); }

  /// The effective last-layer weight W = g v / |v| (out, bottleneck).
  tensor<B> last_layer_weight() const { return ops::weight_norm(weight_v_.value, weight_g_.value); }
  /// Zeroes the last layer's gradients (DINO's cancel_gradients_last_layer during the first epoch).
  void zero_last_layer_grad() {
    weight_v_.grad.zero();
    weight_g_.grad.zero();
  }
  /// Marks the last layer frozen (the optimizer skips it) or trainable again; weight_g stays
  /// frozen under norm_last_layer.
  void set_last_layer_frozen(bool frozen) {
    weight_v_.frozen = frozen;
    weight_g_.frozen = frozen || opt_.norm_last_layer;
  }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    output<saved_type, B> out;
    auto& s = out.saved;
    tensor<B> h = x;
    for (size_t i = 0; i < lin_.size(); ++i) {
      auto l = lin_[i].forward(std::move(h));
      s.lin.push_back(std::move(l.saved));
      h = std::move(l.y);
      if (i + 1 < lin_.size()) {
        auto a = act_.forward(std::move(h));
        s.act.push_back(std::move(a.saved));
        h = std::move(a.y);
      }
    }
    s.n = ops::l2_normalize_rows(h, s.norms);
    out.y = ops::linear_forward(s.n, last_layer_weight(), nullptr);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    expect_shape(dy, shape{s.n.dim(0), opt_.out_dim}, "dino_head::backward dy");
    tensor<B> dw(weight_v_.value.shape(), 0.0f);
    tensor<B> g = ops::linear_backward(s.n, last_layer_weight(), dy, dw, nullptr);
    ops::weight_norm_backward(weight_v_.value, weight_g_.value, dw, weight_v_.grad, weight_g_.grad);
    g = ops::l2_normalize_rows_backward(s.n, s.norms, g);
    for (size_t i = lin_.size(); i-- > 0;) {
      if (i + 1 < lin_.size()) g = act_.backward(s.act[i], g);
      g = lin_[i].backward(s.lin[i], g);
    }
    return g;
  }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    tensor<B> h = x;
    for (size_t i = 0; i < lin_.size(); ++i) {
      h = lin_[i].infer(h);
      if (i + 1 < lin_.size()) h = act_.infer(h);
    }
    tensor<B> norms;
    return ops::linear_forward(ops::l2_normalize_rows(h, norms), last_layer_weight(), nullptr);
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    for (size_t i = 0; i < lin_.size(); ++i) lin_[i].collect(out, join_name(prefix, "mlp." + std::to_string(2 * i)));
    out.push_back({join_name(prefix, "last_layer.weight_g"), &weight_g_});
    out.push_back({join_name(prefix, "last_layer.weight_v"), &weight_v_});
  }

 private:
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 2 && x.dim(1) == opt_.in_dim, "dino_head: expected features (N, ", opt_.in_dim,
                       "), got ", x.shape());
  }

  dino_head_options opt_;
  std::vector<linear<B>> lin_;
  gelu<B> act_;
  parameter<B> weight_v_;
  parameter<B> weight_g_;
};

}  // namespace ssl
