#pragma once
// Parameter groups: a subset of a param_list, chosen by a predicate on (name, kind),
// with its own learning-rate scale and weight-decay scale.
//
// The optimizer's lr and weight decay are the schedulable base values; a parameter in
// group g is updated with lr * g.lr_scale and weight_decay * g.weight_decay_scale.
// A parameter belongs to the first group whose predicate accepts it, else to the
// default group (scales 1, 1). Typical use: no weight decay on biases and norms:
//   ssl::sgd opt(params, {.lr = 0.06f, .momentum = 0.9f, .weight_decay = 5e-4f}, {ssl::no_decay_on_bias_and_norm()});
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "../nn/module.hpp"

namespace ssl {

struct param_group {
  std::string name = "group";
  /// Which parameters belong to the group: select(name, kind).
  std::function<bool(const std::string&, param_kind)> select;
  float lr_scale = 1.0f;
  float weight_decay_scale = 1.0f;
};

/// Biases and norm parameters (param_kind::bias / norm) get no weight decay.
inline param_group no_decay_on_bias_and_norm() {
  return {"no_decay", [](const std::string&, param_kind k) { return k != param_kind::weight; }, 1.0f, 0.0f};
}

/// Whether a parameter gets weight decay: a weight (not a bias / norm) whose name, relative to its
/// module, is not in `no_decay` (e.g. no_weight_decay_names(vit): cls_token, pos_embed, ...).
inline bool gets_weight_decay(const std::string& relative_name, param_kind k, const std::vector<std::string>& no_decay) {
  return k == param_kind::weight && std::find(no_decay.begin(), no_decay.end(), relative_name) == no_decay.end();
}

/// Parameters whose dotted name starts with `prefix` get their lr scaled (e.g. a predictor at 10x).
inline param_group lr_scale_for_prefix(const std::string& prefix, float scale) {
  return {"lr_scale:" + prefix, [prefix](const std::string& n, param_kind) { return n.rfind(prefix, 0) == 0; }, scale,
          1.0f};
}

namespace detail {
/// Index of the group of each parameter: groups.size() means the default group.
template <class B>
std::vector<size_t> assign_groups(const param_list<B>& params, const std::vector<param_group>& groups) {
  std::vector<size_t> out(params.size(), groups.size());
  for (size_t i = 0; i < params.size(); ++i)
    for (size_t g = 0; g < groups.size(); ++g)
      if (groups[g].select && groups[g].select(params[i].name, params[i].p->kind)) {
        out[i] = g;
        break;
      }
  return out;
}
}  // namespace detail

}  // namespace ssl
