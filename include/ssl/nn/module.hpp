#pragma once
// The module contract: activations belong to the call, not to the module.
//
// A module owns parameters and their gradients, nothing else that changes per call.
//   auto [y, saved] = m.forward(x);   // training-mode forward; `saved` holds what backward needs
//   tensor dx = m.backward(saved, dy); // returns dL/dx and ACCUMULATES (+=) dL/dθ into each parameter's grad
//   tensor y2 = m.infer(x);            // inference (eval mode, e.g. BN running statistics), saves nothing
// Because the saved state is returned to the caller, one module may run forward on
// several inputs (SimCLR's two views, DINO's global and local crops of different
// sizes) and then take each backward pass in any order; gradients add up.
// Gradient rule: backward(saved_i, dy_i) adds J_θ(x_i)^T dy_i to θ.grad and returns J_x(x_i)^T dy_i.
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../tensor/tensor.hpp"

namespace ssl {

/// What a forward pass returns: the output and the module's saved state for backward.
template <class Saved, class B = cpu>
struct output {
  tensor<B> y;
  Saved saved;
};

/// How an optimizer should treat a parameter (LARS and weight decay exclude biases and norms).
enum class param_kind { weight, bias, norm };

/// A trainable tensor and its gradient (same shape). `frozen` parameters get no update.
template <class B = cpu>
struct parameter {
  tensor<B> value;
  tensor<B> grad;
  param_kind kind = param_kind::weight;
  bool frozen = false;

  parameter() = default;
  explicit parameter(const shape& s, param_kind k = param_kind::weight) : value(s, 0.0f), grad(s, 0.0f), kind(k) {}
  /// True for parameters that LARS adaptation and (by default) weight decay skip.
  bool is_bias_or_norm() const { return kind != param_kind::weight; }
};

/// A named reference to a parameter, as collected by `parameters()`.
template <class B = cpu>
struct param_ref {
  std::string name;
  parameter<B>* p;
};
template <class B = cpu>
using param_list = std::vector<param_ref<B>>;

/// Collects a module's parameters; modules implement
///   void collect(param_list<B>& out, const std::string& prefix)
template <class M>
auto parameters(M& m, const std::string& prefix = "") {
  param_list<typename M::backend_type> out;
  m.collect(out, prefix);
  return out;
}

/// Zeroes every gradient of a module.
template <class M>
void zero_grad(M& m) {
  for (auto& r : parameters(m)) r.p->grad.zero();
}

/// Number of scalar parameters of a module.
template <class M>
int64_t parameter_count(M& m) {
  int64_t n = 0;
  for (auto& r : parameters(m)) n += r.p->value.numel();
  return n;
}

/// Joins a prefix and a name with a dot ("" + "w" -> "w", "enc" + "w" -> "enc.w").
inline std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

/// Module: satisfied by every layer in ssl/nn, every encoder and head.
/// Requires `backend_type`, `forward(x) -> output<saved_type>`, `backward(saved, dy) -> tensor`,
/// `infer(x) -> tensor` and `collect(param_list&, prefix)`.
template <class M>
concept Module = requires(M m, const M cm, const tensor<typename M::backend_type>& x,
                          const typename M::saved_type& s, param_list<typename M::backend_type>& pl) {
  typename M::backend_type;
  typename M::saved_type;
  { m.forward(x) } -> std::same_as<output<typename M::saved_type, typename M::backend_type>>;
  { m.backward(s, x) } -> std::same_as<tensor<typename M::backend_type>>;
  { cm.infer(x) } -> std::same_as<tensor<typename M::backend_type>>;
  m.collect(pl, std::string{});
};

/// Encoder: a Module that maps images to feature vectors of a known size,
/// reported by `feature_dim()`. Satisfied by ssl::mlp_encoder, convnet_s, resnet, vit.
template <class M>
concept Encoder = Module<M> && requires(const M m) {
  { m.feature_dim() } -> std::convertible_to<int64_t>;
};

/// LayeredEncoder: an Encoder whose parameters are ordered in depth, for layer-wise learning-rate
/// decay (optim/layer_decay.hpp). Ids run from 0 (the input side: embeddings, stem) to
/// layer_count() - 1 (the output side); layer_of(name) is the id of a parameter named as
/// collect(out, "") names it, and a name the encoder does not have is a value_error.
/// Satisfied by convnet_s, resnet, vit.
template <class M>
concept LayeredEncoder = Encoder<M> && requires(const M m, const std::string& name) {
  { m.layer_count() } -> std::convertible_to<int64_t>;
  { m.layer_of(name) } -> std::convertible_to<int64_t>;
};

/// NoWeightDecayList: a module naming weights (param_kind::weight) that fine-tuning should not
/// weight-decay (timm's no_weight_decay(): a ViT's cls_token, pos_embed, ...), named as
/// collect(out, "") names them. Satisfied by vit.
template <class M>
concept NoWeightDecayList = requires(const M m) {
  { m.no_weight_decay() } -> std::convertible_to<std::vector<std::string>>;
};

/// The no_weight_decay() names of `m`, or none for a module without the list.
template <class M>
std::vector<std::string> no_weight_decay_names(const M& m) {
  if constexpr (NoWeightDecayList<M>)
    return m.no_weight_decay();
  else
    return {};
}

/// Head: a Module mapping (B, in_dim) features to (B, out_dim), opting in by `is_head = true`
/// (encoders and heads have the same shape; the tag tells them apart).
/// Satisfied by projection_mlp, prediction_mlp, dino_head.
template <class M>
concept Head = Module<M> && M::is_head && requires(const M m) {
  { m.in_dim() } -> std::convertible_to<int64_t>;
  { m.out_dim() } -> std::convertible_to<int64_t>;
};

}  // namespace ssl
