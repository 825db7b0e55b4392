#pragma once
// batch_norm<B>: batch normalisation over (N, C) or (N, C, H, W) inputs (PyTorch BatchNorm1d / BatchNorm2d).
//   forward (train): y = gamma * (x - mu_B) / sqrt(var_B + eps) + beta with the batch's mean and biased
//     variance per channel, and the running statistics move towards the batch's:
//     running = (1 - m) running + m batch (variance unbiased, var_B * M / (M - 1)), m = momentum,
//     or m = 1 / num_batches_tracked (cumulative average) when momentum is std::nullopt.
//   infer (eval): the same affine map with running_mean / running_var.
// Parameters "weight" (gamma, init 1) and "bias" (beta, init 0), both param_kind::norm.
// Buffers (not parameters, listed by collect_buffers for checkpoints): "running_mean", "running_var",
// "num_batches_tracked" (a scalar tensor).
// With `relu` set the layer is BN followed by ReLU in one pass (same parameters and buffers).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/batch_norm.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/batch_norm.cuh"
#endif

namespace ssl {

struct batch_norm_options {
  int64_t channels = 1;
  float eps = 1e-5f;
  std::optional<float> momentum = 0.1f;  // std::nullopt: cumulative moving average
  bool relu = false;                     // fuse a ReLU after the affine map
};

/// Per-channel batch statistics as the backend's ops take them: host vectors on the CPU,
/// device tensors (C) on the GPU.
template <class B>
using batch_stats = std::conditional_t<std::same_as<B, cpu>, std::vector<float>, tensor<B>>;

template <class B = cpu>
class batch_norm {
 public:
  using backend_type = B;
  /// What backward needs: the input and its batch mean and 1 / sqrt(var + eps) per channel.
  struct saved_type {
    tensor<B> x;
    batch_stats<B> mean, invstd;
    int64_t count = 0;  // values per channel the statistics cover (all replicas' with SyncBatchNorm)
  };

  batch_norm() = default;
  explicit batch_norm(int64_t channels) : batch_norm(batch_norm_options{.channels = channels}) {}
  explicit batch_norm(const batch_norm_options& o) : opt_(o) {
    check<value_error>(o.channels >= 1 && o.eps > 0, "batch_norm: expected channels >= 1 and eps > 0, got channels ",
                       o.channels, ", eps ", o.eps);
    check<value_error>(!o.momentum || (*o.momentum >= 0 && *o.momentum <= 1),
                       "batch_norm: expected momentum in [0, 1] or nullopt, got ", o.momentum.value_or(0));
    weight_ = parameter<B>(shape{o.channels}, param_kind::norm);
    bias_ = parameter<B>(shape{o.channels}, param_kind::norm);
    weight_.value.fill(1.0f);
    running_mean_ = tensor<B>(shape{o.channels}, 0.0f);
    running_var_ = tensor<B>(shape{o.channels}, 1.0f);
    num_batches_tracked_ = tensor<B>(shape{}, 0.0f);
  }

  const batch_norm_options& options() const { return opt_; }
  int64_t channels() const { return opt_.channels; }
  parameter<B>& weight() { return weight_; }
  parameter<B>& bias() { return bias_; }
  const tensor<B>& running_mean() const { return running_mean_; }
  const tensor<B>& running_var() const { return running_var_; }
  tensor<B>& running_mean() { return running_mean_; }
  tensor<B>& running_var() { return running_var_; }
  int64_t num_batches_tracked() const {
    float n = 0;
    num_batches_tracked_.copy_to_host(&n);
    return int64_t(n);
  }

  /// Momentum of the running statistics; std::nullopt gives a cumulative average (BN recalibration).
  void set_momentum(std::optional<float> m) { opt_.momentum = m; }
  /// Running mean 0, running variance 1, no batches tracked.
  void reset_running_stats() {
    running_mean_.fill(0.0f);
    running_var_.fill(1.0f);
    num_batches_tracked_.fill(0.0f);
    tracked_on_host_ = 0;
  }

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Takes ownership of x (no copy) for the saved state.
  output<saved_type, B> forward(tensor<B>&& x) {
    check_input(x);
    output<saved_type, B> out;
    batch_stats<B> var;
    int64_t count = x.numel() / opt_.channels;
    if constexpr (std::same_as<B, cpu>)
      count = ops::batch_norm_forward_train(x, weight_.value, bias_.value, opt_.eps, opt_.relu, out.y, out.saved.mean,
                                            var, out.saved.invstd, all_reduce_.get());
    else
      ops::batch_norm_forward_train(x, weight_.value, bias_.value, opt_.eps, opt_.relu, out.y, out.saved.mean, var,
                                    out.saved.invstd);
    out.saved.count = count;
    const float tracked = count_batch();
    const float m = opt_.momentum ? *opt_.momentum : 1.0f / tracked;
    ops::batch_norm_update_running(running_mean_, running_var_, out.saved.mean, var, count, m);
    out.saved.x = std::move(x);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> dx;
    backward_into(s, dy, dx);
    return dx;
  }
  /// The same, computed in place in dy's memory (dx[i] depends on dy[i] only once the sums are
  /// taken), for callers that no longer need dy: one activation-sized tensor less at the peak.
  tensor<B> backward(const saved_type& s, tensor<B>&& dy) {
    tensor<B> g = std::move(dy);
    backward_into(s, g, g);
    return g;
  }

  /// SyncBatchNorm: train-mode statistics (and their gradients) over the batches of every
  /// data-parallel replica, summed by `f` (ops::batch_norm_all_reduce; dist::sync_batch_norm sets it
  /// from a communicator). Copies of the module (EMA teachers) share it. An empty f: this batch only.
  /// Host (cpu) modules only.
  void set_all_reduce(ops::batch_norm_all_reduce f) {
    check<value_error>(std::same_as<B, cpu> || !f, "batch_norm::set_all_reduce: SyncBatchNorm is host (cpu) only");
    all_reduce_ = f ? std::make_shared<const ops::batch_norm_all_reduce>(std::move(f)) : nullptr;
  }
  bool synchronized() const { return all_reduce_ != nullptr; }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    tensor<B> y;
    ops::batch_norm_forward_eval(x, weight_.value, bias_.value, running_mean_, running_var_, opt_.eps, opt_.relu, y);
    return y;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    out.push_back({join_name(prefix, "weight"), &weight_});
    out.push_back({join_name(prefix, "bias"), &bias_});
  }

  void collect_buffers(std::vector<std::pair<std::string, tensor<B>*>>& out, const std::string& prefix) {
    tracked_on_host_ = -1;  // the caller may overwrite num_batches_tracked (a checkpoint load)
    out.emplace_back(join_name(prefix, "running_mean"), &running_mean_);
    out.emplace_back(join_name(prefix, "running_var"), &running_var_);
    out.emplace_back(join_name(prefix, "num_batches_tracked"), &num_batches_tracked_);
  }

 private:
  void backward_into(const saved_type& s, const tensor<B>& dy, tensor<B>& dx) {
    if constexpr (std::same_as<B, cpu>)
      ops::batch_norm_backward_train(dy, s.x, s.mean, s.invstd, weight_.value, bias_.value, opt_.relu, dx, weight_.grad,
                                     bias_.grad, all_reduce_.get(), s.count);
    else
      ops::batch_norm_backward_train(dy, s.x, s.mean, s.invstd, weight_.value, bias_.value, opt_.relu, dx, weight_.grad,
                                     bias_.grad);
  }

  void check_input(const tensor<B>& x) const {
    check<shape_error>((x.rank() == 2 || x.rank() == 4) && x.dim(1) == opt_.channels, "batch_norm: expected input (N, ",
                       opt_.channels, ") or (N, ", opt_.channels, ", H, W), got shape ", x.shape());
  }

  /// num_batches_tracked += 1; returns the new count. On the GPU the count is kept on the host
  /// too (read back once after collect_buffers handed the buffer out), so a step never waits.
  float count_batch() {
    if constexpr (std::same_as<B, cpu>) {
      return num_batches_tracked_[0] += 1.0f;
    } else {
      if (tracked_on_host_ < 0) num_batches_tracked_.copy_to_host(&tracked_on_host_);
      tracked_on_host_ += 1.0f;
      num_batches_tracked_.fill(tracked_on_host_);
      return tracked_on_host_;
    }
  }

  batch_norm_options opt_;
  parameter<B> weight_, bias_;
  tensor<B> running_mean_, running_var_, num_batches_tracked_;
  float tracked_on_host_ = 0;  // GPU only: mirror of num_batches_tracked, < 0 when unknown
  std::shared_ptr<const ops::batch_norm_all_reduce> all_reduce_;  // SyncBatchNorm (cpu only), null: off
};

namespace detail {
/// Accepts any batch-norm module: the probe of `for_each_batch_norm` in constraints (a named
/// type, because nvcc rejects a lambda inside a requires-expression).
struct any_batch_norm_visitor {
  template <class BN>
  void operator()(BN&) const {}
};
}  // namespace detail

/// A composite module that visits its batch norms with for_each_batch_norm(f).
template <class M>
concept HasBatchNorms = requires(M& m, detail::any_batch_norm_visitor v) { m.for_each_batch_norm(v); };

/// Sets the running-statistics momentum of every BN of a composite module that offers
/// `for_each_batch_norm(f)` (std::nullopt: cumulative average, as for BN recalibration).
template <HasBatchNorms M>
void set_batch_norm_momentum(M& m, std::optional<float> momentum) {
  m.for_each_batch_norm([&](auto& bn) { bn.set_momentum(momentum); });
}
/// Resets the running statistics of every BN of a composite module (see set_batch_norm_momentum).
template <HasBatchNorms M>
void reset_running_stats(M& m) {
  m.for_each_batch_norm([](auto& bn) { bn.reset_running_stats(); });
}

}  // namespace ssl
