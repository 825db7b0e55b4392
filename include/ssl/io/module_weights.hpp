#pragma once
// A module's weights (parameters + buffers such as BN running statistics) to and from safetensors,
// under PyTorch state_dict names, for evaluation and for use outside ssl:
//   save_module_weights("enc.safetensors", encoder);               // "0.weight", "1.running_mean", ...
//   load_module_weights("simclr.safetensors", encoder, "encoder");  // from a training checkpoint
// load_module_weights reads either a plain weights file (names as saved) or an ssl training checkpoint
// (ssl::save_checkpoint, names "model.<prefix>.<name>"), picking the tensors under `prefix`. It is
// strict: every tensor of the module must be there with its shape; nothing is written when it throws.
// In PyTorch (docs/pytorch.md, checked by scripts/check_torch_load.py):
//   from safetensors.torch import load_file
//   w = {k[len("model.encoder."):]: v for k, v in load_file("simclr.safetensors").items() if k.startswith("model.encoder.")}
//   encoder.load_state_dict(w, strict=False)  # only BN's num_batches_tracked is not in the file
#include <string>
#include <utility>
#include <vector>

#include "../nn/module.hpp"
#include "checkpoint.hpp"
#include "safetensors.hpp"

namespace ssl {

/// References to every tensor of `m`: parameter values, then buffers (when it has any).
template <class M>
tensor_refs module_tensors(M& m) {
  param_list<cpu> params;
  m.collect(params, "");
  tensor_refs out;
  for (const auto& r : params) out.push_back({r.name, &r.p->value});
  std::vector<std::pair<std::string, tensor<cpu>*>> buffers;
  if constexpr (requires { m.collect_buffers(buffers, std::string{}); }) m.collect_buffers(buffers, "");
  for (auto& [n, t] : buffers) out.push_back({n, t});
  return out;
}

/// Writes the module's tensors to `path` (atomically), named as module_tensors names them.
template <class M>
void save_module_weights(const std::string& path, M& m) {
  named_tensors all;
  for (const auto& r : module_tensors(m)) all.emplace_back(r.name, *r.t);
  save_safetensors(path, all, {{"format", "ssl-weights-1"}});
}

/// Loads the module's tensors from a weights file or, under "model.<prefix>.", from a checkpoint.
/// Throws value_error naming a missing or unexpected tensor, shape_error naming a tensor whose
/// shape differs.
template <class M>
void load_module_weights(const std::string& path, M& m, const std::string& prefix = "") {
  safetensors_content raw = load_safetensors(path);
  const auto fmt = raw.metadata.find("format");
  const bool checkpoint = fmt != raw.metadata.end() && fmt->second == checkpoint_format;
  const std::string head = (checkpoint ? std::string("model.") : std::string()) + (prefix.empty() ? "" : prefix + ".");
  named_tensors picked;
  for (auto& [n, t] : raw.tensors)
    if (n.rfind(head, 0) == 0) picked.emplace_back(n.substr(head.size()), std::move(t));
  check<value_error>(!picked.empty(), "load_module_weights: '", path, "' has no tensor named '", head,
                     "*' (expected the module's weights", checkpoint ? " in an ssl checkpoint" : "", ")");
  // strict both ways: every module tensor present with its shape, nothing else under the prefix
  restore_tensors(module_tensors(m), picked, "load_module_weights '" + path + "' (prefix '" + prefix + "')");
}

}  // namespace ssl
