#pragma once
// swav_prototypes<B>: SwAV's prototype layer (Caron et al. 2020): K learnable unit vectors c_k in
// the embedding space, scored against the L2-normalised embedding.
//   z (N, D) -> n = z / max(|z|, 1e-12)      (N, D)   (F.normalize(z, dim=1))
//            -> s = n C^T                    (N, K)   C (K, D), no bias
// The rows of C are put back on the unit sphere before every step (`normalize()`, as the official
// code's in-place normalisation of prototypes.weight under no_grad); the gradient reaches C as
// that of a plain linear layer. Init: PyTorch's nn.Linear default U(+-1/sqrt(D)).
// SwAV freezes the prototypes for its first iterations (`set_frozen`: the optimizer skips them).
// Parameter name (as the official module): weight (K, D), under the method's "prototypes." prefix.
#include <cmath>
#include <string>
#include <utility>

#include "../backend/cpu/linear.hpp"
#include "../backend/cpu/weight_norm.hpp"
#include "../nn/init.hpp"
#include "../nn/module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/linear.cuh"
#include "../backend/cuda/weight_norm.cuh"
#endif

namespace ssl {

template <class B = cpu>
class swav_prototypes {
 public:
  using backend_type = B;

  struct saved_type {
    tensor<B> n;      // normalised embeddings (N, D)
    tensor<B> norms;  // |z_i| (N)
  };

  swav_prototypes() = default;
  /// K prototypes of dimension D (the projector's out_dim).
  swav_prototypes(int64_t dim, int64_t count, rng gen = rng(0)) {
    check<value_error>(dim > 0 && count > 0, "swav_prototypes: expected a positive dimension and count, got dimension ",
                       dim, " and ", count, " prototypes");
    weight_ = parameter<B>(shape{count, dim}, param_kind::weight);
    const float bound = 1.0f / std::sqrt(float(dim));
    init::uniform(weight_.value, gen, -bound, bound);
  }

  int64_t dim() const { return weight_.value.rank() == 2 ? weight_.value.dim(1) : 0; }
  int64_t count() const { return weight_.value.rank() == 2 ? weight_.value.dim(0) : 0; }
  parameter<B>& weight() { return weight_; }
  const parameter<B>& weight() const { return weight_; }

  /// C <- C with every row scaled to unit length (before each step).
  void normalize() {
    tensor<B> norms;
    weight_.value = ops::l2_normalize_rows(weight_.value, norms);
  }
  /// Whether the optimizer skips the prototypes (SwAV's first iterations).
  void set_frozen(bool frozen) { weight_.frozen = frozen; }
  bool frozen() const { return weight_.frozen; }

  /// z (N, D) -> scores (N, K) against the current rows of C.
  output<saved_type, B> forward(const tensor<B>& z) const {
    check_input(z);
    output<saved_type, B> out;
    out.saved.n = ops::l2_normalize_rows(z, out.saved.norms);
    out.y = ops::linear_forward(out.saved.n, weight_.value, nullptr);
    return out;
  }
  /// ds (N, K) -> dz (N, D); dC += ds^T n.
  tensor<B> backward(const saved_type& s, const tensor<B>& ds) {
    expect_shape(ds, shape{s.n.dim(0), count()}, "swav_prototypes::backward scores gradient");
    const tensor<B> dn = ops::linear_backward(s.n, weight_.value, ds, weight_.grad, nullptr);
    return ops::l2_normalize_rows_backward(s.n, s.norms, dn);
  }
  /// Scores of embeddings that are already unit rows (SwAV's queue): n (N, D) -> n C^T (N, K).
  tensor<B> score_normalized(const tensor<B>& n) const {
    check_input(n);
    return ops::linear_forward(n, weight_.value, nullptr);
  }
  tensor<B> infer(const tensor<B>& z) const { return forward(z).y; }

  void collect(param_list<B>& out, const std::string& prefix) { out.push_back({join_name(prefix, "weight"), &weight_}); }

 private:
  void check_input(const tensor<B>& z) const {
    check<shape_error>(z.rank() == 2 && z.dim(1) == dim(), "swav_prototypes: expected embeddings (N, ", dim(),
                       "), got ", z.shape());
  }

  parameter<B> weight_;
};

}  // namespace ssl
