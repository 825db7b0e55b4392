#pragma once
// The Optimizer concept and the machinery the optimizers share: parameter groups,
// schedulable lr / weight decay, parallel chunked updates and named optimizer state.
#include <algorithm>
#include <concepts>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../core/parallel.hpp"
#include "param_group.hpp"

namespace ssl {

/// Named tensors, the exchange format of optimizer state and checkpoints.
using named_tensors = std::vector<std::pair<std::string, tensor<cpu>>>;

/// Optimizer: updates a param_list<B> in place from the accumulated gradients.
///   opt.step();                    // one update with the current lr / weight decay
///   opt.set_lr(x); opt.lr();       // base learning rate (schedules set it every step)
///   opt.set_weight_decay(x);       // base weight decay (DINO schedules 0.04 -> 0.4)
///   opt.step_count();              // number of steps taken
///   opt.state_dict(); opt.load_state_dict(s);  // named state tensors for checkpoints
///   opt.zero_grad();
/// Satisfied by ssl::sgd<B>, ssl::adamw<B>, ssl::lars<B> (B = cpu or, under nvcc, cuda: the
/// update of each parameter is then one fused kernel; state_dict() copies the state to the host).
template <class O>
concept Optimizer = requires(O o, const O co, float x, const named_tensors& s) {
  o.step();
  o.set_lr(x);
  o.set_weight_decay(x);
  o.zero_grad();
  { co.lr() } -> std::convertible_to<float>;
  { co.weight_decay() } -> std::convertible_to<float>;
  { co.step_count() } -> std::convertible_to<int64_t>;
  { co.state_dict() } -> std::same_as<named_tensors>;
  o.load_state_dict(s);
};

/// Shared base of the optimizers (not a polymorphic interface: step() is in each optimizer).
/// Holds the parameters, their groups, one tensor per state slot and parameter (one tensor per
/// parameter, e.g. "momentum_buffer") and the step count.
/// State names: "<param name>.<slot>" per parameter and slot, plus "step" (a scalar,
/// exact up to 2^24 steps). The state lives on B, like the parameters.
template <class B = cpu>
class optimizer_base {
 public:
  void set_lr(float lr) {
    check(lr >= 0.0f, name_, ": learning rate must be >= 0, got ", lr);
    lr_ = lr;
  }
  float lr() const { return lr_; }
  void set_weight_decay(float wd) {
    check(wd >= 0.0f, name_, ": weight decay must be >= 0, got ", wd);
    weight_decay_ = wd;
  }
  float weight_decay() const { return weight_decay_; }
  int64_t step_count() const { return step_; }
  const param_list<B>& params() const { return params_; }

  /// Learning rate / weight decay used for parameter i (base value times its group's scale).
  float lr_of(size_t i) const { return lr_ * group_scale(i).first; }
  float weight_decay_of(size_t i) const { return weight_decay_ * group_scale(i).second; }

  void zero_grad() {
    for (auto& r : params_) r.p->grad.zero();
  }

  named_tensors state_dict() const {
    named_tensors out;
    out.emplace_back("step", tensor<cpu>::full(shape{}, float(step_)));
    for (size_t i = 0; i < params_.size(); ++i)
      for (size_t k = 0; k < slot_names_.size(); ++k)
        out.emplace_back(params_[i].name + "." + slot_names_[k], to_host(slot_data_[k][i]));
    return out;
  }

  /// Restores state written by state_dict(); every expected name must be present with the
  /// right shape and nothing else may be there. Nothing changes when it throws.
  void load_state_dict(const named_tensors& state) {
    std::set<std::string> seen;
    for (const auto& [n, t] : state) {
      check<value_error>(seen.insert(n).second, name_, "::load_state_dict: duplicate entry '", n, "'");
    }
    auto find = [&](const std::string& n) -> const tensor<cpu>& {
      for (const auto& [k, t] : state)
        if (k == n) return t;
      throw value_error(detail::concat(name_, "::load_state_dict: missing entry '", n, "'"));
    };
    const tensor<cpu>& st = find("step");
    check<shape_error>(st.numel() == 1, name_, "::load_state_dict: 'step' expected 1 element, got shape ", st.shape());
    check<value_error>(st[0] >= 0.0f, name_, "::load_state_dict: 'step' must be >= 0, got ", st[0]);
    size_t expected = 1;
    for (size_t i = 0; i < params_.size(); ++i)
      for (const auto& slot : slot_names_) {
        const std::string n = params_[i].name + "." + slot;
        const tensor<cpu>& t = find(n);
        check<shape_error>(t.shape() == params_[i].p->value.shape(), name_, "::load_state_dict: '", n,
                           "' expected shape ", params_[i].p->value.shape(), ", got ", t.shape());
        ++expected;
      }
    if (state.size() != expected) {
      for (const auto& [n, t] : state) {
        bool known = n == "step";
        for (size_t i = 0; i < params_.size() && !known; ++i)
          for (const auto& slot : slot_names_) known |= n == params_[i].name + "." + slot;
        check<value_error>(known, name_, "::load_state_dict: unexpected entry '", n, "'");
      }
    }
    step_ = int64_t(st[0]);
    for (size_t i = 0; i < params_.size(); ++i)
      for (size_t k = 0; k < slot_names_.size(); ++k) {
        const tensor<cpu>& t = find(params_[i].name + "." + slot_names_[k]);
        if constexpr (std::same_as<B, cpu>)
          slot_data_[k][i] = t;
        else
          slot_data_[k][i].copy_from_host(t.data());
      }
  }

 protected:
  /// Updates run over chunks of at most this many elements, in parallel.
  static constexpr int64_t chunk_elems = 1 << 15;
  struct chunk {
    size_t param;
    int64_t begin, end;
  };

  optimizer_base(const char* name, param_list<B> params, float lr, float weight_decay,
                 std::vector<param_group> groups)
      : name_(name), params_(std::move(params)), groups_(std::move(groups)) {
    set_lr(lr);
    set_weight_decay(weight_decay);
    std::set<std::string> names;
    for (const auto& r : params_) {
      check(r.p != nullptr, name_, ": parameter '", r.name, "' is null");
      check(names.insert(r.name).second, name_, ": duplicate parameter name '", r.name, "'");
      check<shape_error>(r.p->grad.shape() == r.p->value.shape(), name_, ": parameter '", r.name,
                         "' has value shape ", r.p->value.shape(), " but grad shape ", r.p->grad.shape());
    }
    for (const auto& g : groups_) {
      check(g.lr_scale >= 0.0f && g.weight_decay_scale >= 0.0f, name_, ": group '", g.name,
            "' needs lr_scale and weight_decay_scale >= 0, got ", g.lr_scale, " and ", g.weight_decay_scale);
    }
    group_of_ = detail::assign_groups(params_, groups_);
    for (size_t i = 0; i < params_.size(); ++i) {
      const int64_t n = params_[i].p->value.numel();
      for (int64_t b = 0; b < n; b += chunk_elems) chunks_.push_back({i, b, std::min(n, b + chunk_elems)});
    }
  }

  /// Adds a state slot (one zero tensor per parameter, shaped like it); returns its index.
  size_t add_slot(const std::string& slot) {
    std::vector<tensor<B>> v;
    v.reserve(params_.size());
    for (const auto& r : params_) v.push_back(tensor<B>::zeros(r.p->value.shape()));
    slot_names_.push_back(slot);
    slot_data_.push_back(std::move(v));
    return slot_names_.size() - 1;
  }
  /// The state tensor of slot k for parameter i.
  tensor<B>& state(size_t k, size_t i) { return slot_data_[k][i]; }

  /// Calls f(i) for every non-frozen parameter i (in order; the device path: one kernel each).
  template <class F>
  void for_each_param(F&& f) const {
    for (size_t i = 0; i < params_.size(); ++i)
      if (!params_[i].p->frozen) f(i);
  }

  /// Calls f(chunk) for every chunk of every non-frozen parameter, in parallel (CPU).
  template <class F>
  void for_each_chunk(F&& f) const requires std::same_as<B, cpu> {
    parallel_for(0, int64_t(chunks_.size()), [&](int64_t c) {
      const chunk& ch = chunks_[size_t(c)];
      if (!params_[ch.param].p->frozen) f(ch);
    });
  }

  std::pair<float, float> group_scale(size_t i) const {
    const size_t g = group_of_[i];
    return g < groups_.size() ? std::pair{groups_[g].lr_scale, groups_[g].weight_decay_scale} : std::pair{1.0f, 1.0f};
  }

  const char* name_;
  param_list<B> params_;
  std::vector<param_group> groups_;
  std::vector<size_t> group_of_;
  std::vector<chunk> chunks_;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<tensor<B>>> slot_data_;  // [slot][param]
  float lr_ = 0.0f;
  float weight_decay_ = 0.0f;
  int64_t step_ = 0;
};

}  // namespace ssl
