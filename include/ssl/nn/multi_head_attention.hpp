#pragma once
// multi_head_attention<B>: timm's Attention (ViT / DINO / MAE), x (N, T, D) -> (N, T, D).
//   qkv = x W_qkv^T + b_qkv   (N, T, 3D), one Linear(D, 3D)
//   per head h (d = D / H):  P_h = softmax(q_h k_h^T / sqrt(d)),  O_h = P_h v_h   (ops::attention_forward)
//   y = concat_h(O_h) W_proj^T + b_proj
// Parameter names: qkv.weight (3D, D), qkv.bias (3D), proj.weight (D, D), proj.bias (D).
// Init (ViT): trunc_normal(std 0.02), biases 0. No dropout.
// infer(x, &probs) also returns the attention probabilities P (N, H, T, T), e.g. for DINO's maps.
#include <cmath>
#include <string>
#include <utility>

#include "../backend/cpu/attention.hpp"
#include "linear.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/attention.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

struct attention_options {
  int64_t dim = 192;
  int64_t heads = 3;
  bool qkv_bias = true;
  float init_std = 0.02f;
};

template <class B = cpu>
class multi_head_attention {
 public:
  using backend_type = B;
  struct saved_type {
    typename linear<B>::saved_type qkv_in;  // x
    tensor<B> qkv;                          // (N, T, 3D)
    tensor<B> probs;                        // (N, H, T, T)
    typename linear<B>::saved_type proj_in;  // concatenated heads (N, T, D)
  };

  multi_head_attention() = default;
  explicit multi_head_attention(const attention_options& o, rng gen = rng(0))
      : opt_(check_options(o)), qkv_(o.dim, 3 * o.dim, o.qkv_bias, gen.fork(0)), proj_(o.dim, o.dim, true, gen.fork(1)) {
    qkv_.reset_trunc_normal(o.init_std, gen.fork(2));
    proj_.reset_trunc_normal(o.init_std, gen.fork(3));
  }

  const attention_options& options() const { return opt_; }
  int64_t heads() const { return opt_.heads; }
  float scale() const { return 1.0f / std::sqrt(float(opt_.dim / opt_.heads)); }
  linear<B>& qkv() { return qkv_; }
  linear<B>& proj() { return proj_; }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    output<saved_type, B> out;
    out.saved.qkv = qkv_.infer(x);
    out.saved.qkv_in.x = x;
    tensor<B> heads_out = ops::attention_forward(out.saved.qkv, opt_.heads, scale(), &out.saved.probs);
    auto p = proj_.forward(std::move(heads_out));
    out.saved.proj_in = std::move(p.saved);
    out.y = std::move(p.y);
    return out;
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    const tensor<B> dheads = proj_.backward(s.proj_in, dy);
    const tensor<B> dqkv = ops::attention_backward(s.qkv, s.probs, opt_.heads, scale(), dheads);
    return qkv_.backward(s.qkv_in, dqkv);
  }
  tensor<B> infer(const tensor<B>& x) const { return infer(x, nullptr); }
  /// Inference; when `probs` is given it receives the attention probabilities (N, H, T, T).
  tensor<B> infer(const tensor<B>& x, tensor<B>* probs) const {
    check_input(x);
    return proj_.infer(ops::attention_forward(qkv_.infer(x), opt_.heads, scale(), probs));
  }
  void collect(param_list<B>& out, const std::string& prefix) {
    qkv_.collect(out, join_name(prefix, "qkv"));
    proj_.collect(out, join_name(prefix, "proj"));
  }

 private:
  static const attention_options& check_options(const attention_options& o) {
    check<value_error>(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
                       "multi_head_attention: expected dim divisible by heads (both > 0), got dim ", o.dim, ", heads ",
                       o.heads);
    return o;
  }
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 3 && x.dim(2) == opt_.dim && x.dim(1) > 0, "multi_head_attention(", opt_.dim,
                       "): expected tokens (N, T, ", opt_.dim, "), got ", x.shape());
  }

  attention_options opt_;
  linear<B> qkv_;
  linear<B> proj_;
};

}  // namespace ssl
