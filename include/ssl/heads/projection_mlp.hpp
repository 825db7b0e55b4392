#pragma once
// projection_mlp<B>: the MLP heads of SimCLR / MoCo v2 / BYOL (projector and predictor).
//   x (N, in) -> [linear(in->hidden) -> BN1d(hidden) -> ReLU] x (layers - 1) -> linear(hidden->out) [-> BN1d(out)]
// Widths in_dim -> hidden_dim -> ... -> out_dim; `layers` counts the linear layers (>= 1).
// batch_norm = false gives linear -> ReLU blocks (SimCLR v1 / MoCo v2 style); last_batch_norm adds
// a BN without affine-ReLU on the output (SimCLR v2 / MoCo v3). Parameter names follow
// PyTorch's nn.Sequential numbering of the equivalent model (linear "0", BN "1", ReLU "2", ...).
// activation = gelu puts GELU (the exact erf form) where ReLU was, after an unfused BN: MSN's
// projector (Linear -> BN -> GELU) x 2 -> Linear (Assran et al. 2022); the names do not change.
#include <string>
#include <utility>
#include <vector>

#include "../nn/batch_norm.hpp"
#include "../nn/gelu.hpp"
#include "../nn/linear.hpp"
#include "../nn/relu.hpp"

namespace ssl {

/// The hidden layers' non-linearity.
enum class mlp_activation { relu, gelu };

struct projection_mlp_options {
  int64_t in_dim = 256;
  int64_t hidden_dim = 2048;
  int64_t out_dim = 128;
  int layers = 2;
  bool batch_norm = true;
  bool last_batch_norm = false;
  mlp_activation activation = mlp_activation::relu;
};

template <class B = cpu>
class projection_mlp {
 public:
  using backend_type = B;
  static constexpr bool is_head = true;

  struct saved_type {
    std::vector<typename linear<B>::saved_type> lin;
    std::vector<typename batch_norm<B>::saved_type> bn;
    std::vector<typename relu<B>::saved_type> act;         // ReLU without BN (batch_norm = false)
    std::vector<typename gelu<B>::saved_type> gelu_act;    // every GELU (activation = gelu)
  };

  projection_mlp() = default;
  explicit projection_mlp(const projection_mlp_options& o, rng gen = rng(0)) : opt_(o) {
    check<value_error>(o.layers >= 1 && o.in_dim > 0 && o.hidden_dim > 0 && o.out_dim > 0,
                       "projection_mlp: expected layers >= 1 and positive widths, got layers = ", o.layers, ", in ",
                       o.in_dim, ", hidden ", o.hidden_dim, ", out ", o.out_dim);
    for (int i = 0; i < o.layers; ++i) {
      const bool last = i == o.layers - 1;
      const int64_t in = i == 0 ? o.in_dim : o.hidden_dim, out = last ? o.out_dim : o.hidden_dim;
      // PyTorch's SimCLR/BYOL heads keep the bias even before BN; we follow WORKLOADS.md W1.
      lin_.emplace_back(in, out, /*with_bias=*/true, gen.fork(uint64_t(i)));
      if (!last && o.batch_norm) bn_.emplace_back(batch_norm_options{.channels = out, .relu = !uses_gelu()});
      if (last && o.last_batch_norm) bn_.emplace_back(batch_norm_options{.channels = out, .relu = false});
    }
  }

  int64_t in_dim() const { return opt_.in_dim; }
  int64_t out_dim() const { return opt_.out_dim; }
  const projection_mlp_options& options() const { return opt_; }

  output<saved_type, B> forward(const tensor<B>& x) {
    output<saved_type, B> out;
    tensor<B> h = x;
    size_t b = 0;
    for (size_t i = 0; i < lin_.size(); ++i) {
      auto l = lin_[i].forward(h);
      out.saved.lin.push_back(std::move(l.saved));
      h = std::move(l.y);
      if (has_bn_after(i)) {
        auto n = bn_[b++].forward(h);
        out.saved.bn.push_back(std::move(n.saved));
        h = std::move(n.y);
      } else if (!is_last(i) && !uses_gelu()) {
        auto r = relu_.forward(h);
        out.saved.act.push_back(std::move(r.saved));
        h = std::move(r.y);
      }
      if (!is_last(i) && uses_gelu()) {
        auto a = gelu_.forward(std::move(h));
        out.saved.gelu_act.push_back(std::move(a.saved));
        h = std::move(a.y);
      }
    }
    out.y = std::move(h);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> g = dy;
    size_t b = s.bn.size(), a = s.act.size(), ga = s.gelu_act.size();
    for (size_t i = lin_.size(); i-- > 0;) {
      if (!is_last(i) && uses_gelu()) g = gelu_.backward(s.gelu_act[--ga], g);
      if (has_bn_after(i)) {
        --b;
        g = bn_[b].backward(s.bn[b], g);
      } else if (!is_last(i) && !uses_gelu()) {
        --a;
        g = relu_.backward(s.act[a], g);
      }
      g = lin_[i].backward(s.lin[i], g);
    }
    return g;
  }

  tensor<B> infer(const tensor<B>& x) const {
    tensor<B> h = x;
    size_t b = 0;
    for (size_t i = 0; i < lin_.size(); ++i) {
      h = lin_[i].infer(h);
      if (has_bn_after(i))
        h = bn_[b++].infer(h);
      else if (!is_last(i) && !uses_gelu())
        h = relu_.infer(h);
      if (!is_last(i) && uses_gelu()) h = gelu_.infer(h);
    }
    return h;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    size_t b = 0;
    int idx = 0;
    for (size_t i = 0; i < lin_.size(); ++i) {
      lin_[i].collect(out, join_name(prefix, std::to_string(idx++)));
      if (has_bn_after(i)) bn_[b++].collect(out, join_name(prefix, std::to_string(idx++)));
      if (!is_last(i)) ++idx;  // the ReLU's (GELU's) slot in nn.Sequential
    }
  }
  void collect_buffers(std::vector<std::pair<std::string, tensor<B>*>>& out, const std::string& prefix) {
    size_t b = 0;
    int idx = 0;
    for (size_t i = 0; i < lin_.size(); ++i) {
      ++idx;
      if (has_bn_after(i)) bn_[b++].collect_buffers(out, join_name(prefix, std::to_string(idx++)));
      if (!is_last(i)) ++idx;
    }
  }
  template <class F>
  void for_each_batch_norm(F&& f) {
    for (auto& bn : bn_) f(bn);
  }

 private:
  bool is_last(size_t i) const { return i + 1 == lin_.size(); }
  bool has_bn_after(size_t i) const { return is_last(i) ? opt_.last_batch_norm : opt_.batch_norm; }
  bool uses_gelu() const { return opt_.activation == mlp_activation::gelu; }

  projection_mlp_options opt_;
  std::vector<linear<B>> lin_;
  std::vector<batch_norm<B>> bn_;
  relu<B> relu_;
  gelu<B> gelu_;
};

/// BYOL / SimSiam predictor: the same MLP shape (in -> hidden -> out, BN + ReLU in between).
template <class B = cpu>
using prediction_mlp = projection_mlp<B>;

}  // namespace ssl
