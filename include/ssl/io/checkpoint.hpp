#pragma once
// Training checkpoints: one safetensors file holding
//   "model.<name>"  every model tensor (parameters and buffers such as BN running statistics),
//   "optim.<name>"  the optimizer's state_dict() (momentum buffers, Adam moments, "optim.step"),
//   __metadata__    {"format": "ssl-checkpoint-1", "training_state": "<JSON text>"}, where the JSON is
//                   {"step": int, "epoch": int, "rng": {"<stream name>": counter, ...}, "extra": {...}}.
// One file, written atomically (temp file + fsync + rename), so a crash leaves either the old
// or the new checkpoint, never a mix of model and optimizer state from different steps.
// The file opens in any safetensors reader (python: safetensors.torch.load_file).
#include <concepts>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../nn/module.hpp"
#include "safetensors.hpp"

namespace ssl {

/// Everything besides tensors needed to resume training.
struct training_state {
  int64_t step = 0;
  int64_t epoch = 0;
  std::map<std::string, uint64_t> rng_counters;  // named rng streams' counters (ssl::rng::counter())
  nlohmann::json extra = nlohmann::json::object();  // free-form (config, best metric, ...)
};

/// A named, non-owning reference to a tensor of a model (a parameter value or a buffer).
struct tensor_ref {
  std::string name;
  tensor<cpu>* t;
};
using tensor_refs = std::vector<tensor_ref>;

/// The values of a model's parameters followed by its buffers, as references.
inline tensor_refs model_tensors(const param_list<cpu>& params, const tensor_refs& buffers = {}) {
  tensor_refs out;
  for (const auto& r : params) out.push_back({r.name, &r.p->value});
  out.insert(out.end(), buffers.begin(), buffers.end());
  return out;
}

/// What load_checkpoint returns: tensors without their prefixes, and the training state.
struct checkpoint_content {
  named_tensors model;
  named_tensors optimizer;
  training_state state;
};

inline constexpr const char* checkpoint_format = "ssl-checkpoint-1";

/// Writes a checkpoint of `model` tensors, optimizer state and training state to `path`.
inline void save_checkpoint(const std::string& path, const tensor_refs& model, const named_tensors& optimizer_state,
                            const training_state& state) {
  named_tensors all;
  all.reserve(model.size() + optimizer_state.size());
  for (const auto& r : model) {
    check(r.t != nullptr, "save_checkpoint: model tensor '", r.name, "' is null");
    all.emplace_back("model." + r.name, *r.t);
  }
  for (const auto& [n, t] : optimizer_state) all.emplace_back("optim." + n, t);
  const nlohmann::json js = {{"step", state.step}, {"epoch", state.epoch}, {"rng", state.rng_counters},
                             {"extra", state.extra}};
  save_safetensors(path, all, {{"format", checkpoint_format}, {"training_state", js.dump()}});
}

/// Convenience: parameters (+ buffers) and any optimizer with state_dict().
template <class Opt>
  requires requires(const Opt& o) { { o.state_dict() } -> std::same_as<named_tensors>; }
void save_checkpoint(const std::string& path, const param_list<cpu>& params, const Opt& optimizer,
                     const training_state& state, const tensor_refs& buffers = {}) {
  save_checkpoint(path, model_tensors(params, buffers), optimizer.state_dict(), state);
}

/// Reads a checkpoint; throws format_error naming the file if it is not an ssl checkpoint.
inline checkpoint_content read_checkpoint(const std::string& path) {
  safetensors_content raw = load_safetensors(path);
  auto fail = [&](auto&&... parts) { return format_error(detail::concat("checkpoint '", path, "': ", parts...)); };
  const auto fmt = raw.metadata.find("format");
  if (fmt == raw.metadata.end() || fmt->second != checkpoint_format)
    throw fail("metadata 'format' is '", fmt == raw.metadata.end() ? std::string("<missing>") : fmt->second,
               "', expected '", checkpoint_format, "'");
  const auto ts = raw.metadata.find("training_state");
  if (ts == raw.metadata.end()) throw fail("metadata has no 'training_state'");
  checkpoint_content out;
  try {
    const nlohmann::json js = nlohmann::json::parse(ts->second);
    out.state.step = js.at("step").get<int64_t>();
    out.state.epoch = js.at("epoch").get<int64_t>();
    out.state.rng_counters = js.at("rng").get<std::map<std::string, uint64_t>>();
    out.state.extra = js.value("extra", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    throw fail("training_state is malformed (", e.what(), ")");
  }
  for (auto& [n, t] : raw.tensors) {
    if (n.rfind("model.", 0) == 0)
      out.model.emplace_back(n.substr(6), std::move(t));
    else if (n.rfind("optim.", 0) == 0)
      out.optimizer.emplace_back(n.substr(6), std::move(t));
    else
      throw fail("tensor '", n, "' has neither the 'model.' nor the 'optim.' prefix");
  }
  return out;
}

/// Copies saved tensors into `model`: every reference must be present with its shape, and the
/// checkpoint must hold nothing else. Nothing is written when it throws.
inline void restore_tensors(const tensor_refs& model, const named_tensors& saved, const std::string& what) {
  std::map<std::string, const tensor<cpu>*> by_name;
  for (const auto& [n, t] : saved) by_name[n] = &t;
  for (const auto& r : model) {
    const auto it = by_name.find(r.name);
    check<value_error>(it != by_name.end(), what, ": missing tensor '", r.name, "'");
    check<shape_error>(it->second->shape() == r.t->shape(), what, ": tensor '", r.name, "' expected shape ",
                       r.t->shape(), ", got ", it->second->shape());
  }
  if (by_name.size() != model.size()) {
    std::set<std::string> wanted;
    for (const auto& r : model) wanted.insert(r.name);
    for (const auto& [n, t] : saved) check<value_error>(wanted.count(n) > 0, what, ": unexpected tensor '", n, "'");
  }
  for (const auto& r : model) *r.t = *by_name.at(r.name);
}

/// Loads a checkpoint into model tensors and an optimizer; returns the training state.
/// Everything is validated before anything is changed.
template <class Opt>
  requires requires(Opt& o, const named_tensors& s) { o.load_state_dict(s); }
training_state load_checkpoint(const std::string& path, const tensor_refs& model, Opt& optimizer) {
  checkpoint_content c = read_checkpoint(path);
  // validate the model part first (restore_tensors checks before writing), then the optimizer
  std::vector<tensor<cpu>> backup;
  backup.reserve(model.size());
  for (const auto& r : model) backup.push_back(*r.t);
  restore_tensors(model, c.model, "checkpoint '" + path + "'");
  try {
    optimizer.load_state_dict(c.optimizer);
  } catch (...) {
    for (size_t i = 0; i < model.size(); ++i) *model[i].t = std::move(backup[i]);
    throw;
  }
  return c.state;
}

/// Convenience: parameters (+ buffers) and an optimizer.
template <class Opt>
  requires requires(Opt& o, const named_tensors& s) { o.load_state_dict(s); }
training_state load_checkpoint(const std::string& path, const param_list<cpu>& params, Opt& optimizer,
                               const tensor_refs& buffers = {}) {
  return load_checkpoint(path, model_tensors(params, buffers), optimizer);
}

}  // namespace ssl
