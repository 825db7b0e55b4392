#pragma once
// Layer-wise learning-rate decay (BEiT, Bao et al. 2022; the fine-tuning recipe of MAE and DINOv2):
// layers near the input keep more of their pretrained weights by learning slower.
//
//   encoder parameter at layer l of L = enc.layer_count() ids (0 = input side, L - 1 = output side):
//       lr scale = base_scale * decay^(L - 1 - l)
//   MAE's ViT-B fine-tuning: decay 0.75 over the ids of vit::layer_of (embeddings 0, blocks 1..12,
//   norm 13); its new head sits above them at scale 1 (not in these groups: the default group).
//
//   ssl::param_list<ssl::cpu> params;
//   enc.collect(params, "encoder");
//   head.collect(params, "head");
//   ssl::adamw opt(params, {.lr = 1e-3f, .weight_decay = 0.05f},
//                  ssl::layer_decay_groups(enc, "encoder", 0.75f));
//
// Two groups per layer id: "<prefix>.layer<l>" for weights (param_kind::weight, weight decay kept)
// and "<prefix>.layer<l>.no_decay" for biases, norm parameters and the weights named in `no_decay`
// (names relative to the encoder, e.g. no_weight_decay_names(enc): a ViT's cls_token, pos_embed;
// MAE's param_groups_lrd puts its no_weight_decay_list there too): no weight decay. Parameters
// outside `prefix` match none of them. The groups' predicates read `enc` (its layer_of): an
// optimizer calls them only while it is constructed, so `enc` must live until then.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../nn/module.hpp"
#include "param_group.hpp"

namespace ssl {

template <LayeredEncoder E>
std::vector<param_group> layer_decay_groups(const E& enc, const std::string& prefix, float decay,
                                            float base_scale = 1.0f, const std::vector<std::string>& no_decay = {}) {
  check<value_error>(decay > 0.0f && decay <= 1.0f, "layer_decay_groups: expected a decay in (0, 1], got ", decay);
  check<value_error>(base_scale >= 0.0f, "layer_decay_groups: expected base_scale >= 0, got ", base_scale);
  const int64_t L = enc.layer_count();
  check<value_error>(L >= 1, "layer_decay_groups: expected an encoder with at least one layer, got ", L);
  const std::string head = prefix.empty() ? std::string() : prefix + ".";
  // Layer of a parameter of `enc` (-1: not under the prefix).
  const auto layer = [&enc, head](const std::string& name) -> int64_t {
    if (!head.empty() && name.rfind(head, 0) != 0) return -1;
    return int64_t(enc.layer_of(name.substr(head.size())));
  };
  for (const std::string& n : no_decay) (void)enc.layer_of(n);  // a name the encoder lacks is a value_error
  const auto decayed = [head, no_decay](const std::string& name, param_kind k) {
    return gets_weight_decay(name.substr(std::min(head.size(), name.size())), k, no_decay);
  };
  std::vector<param_group> groups;
  groups.reserve(size_t(2 * L));
  for (int64_t l = 0; l < L; ++l) {
    const float scale = base_scale * float(std::pow(double(decay), double(L - 1 - l)));
    const std::string name = (prefix.empty() ? std::string("layer") : head + "layer") + std::to_string(l);
    groups.push_back({name, [=](const std::string& n, param_kind k) { return decayed(n, k) && layer(n) == l; },
                      scale, 1.0f});
    groups.push_back({name + ".no_decay",
                      [=](const std::string& n, param_kind k) { return !decayed(n, k) && layer(n) == l; }, scale,
                      0.0f});
  }
  return groups;
}

}  // namespace ssl
