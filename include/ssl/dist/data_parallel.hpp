#pragma once
// data_parallel<M, C>: a Method wrapper that trains one replica of `M` per rank.
//
// Each rank runs the wrapped method's train_step on its own shard of the global batch (the
// loader's rank / world_size options); then, before the optimizer step,
//   g <- (1/W) sum_r g_r         every parameter gradient averaged over the W ranks (one all-reduce
//                                of all gradients flattened into a reused buffer)
//   loss <- (1/W) sum_r loss_r   the reported loss is the global mean, the same on every rank.
// Every rank then applies the same update to the same parameters, so the replicas stay
// bit-identical (the communicators' sums are identical on all ranks). For a loss that is a mean over
// the samples with no interaction between them (BYOL's, DINO's per-image terms, MAE's), the step
// equals a single process's step on the global batch; losses that compare samples (NT-Xent,
// InfoNCE) need the other ranks' embeddings: ssl::dist::global_nt_xent.
//
// BatchNorm statistics stay per rank (PyTorch DDP's default) unless the modules were given
// dist::sync_batch_norm (SimCLR's "global BN", SyncBatchNorm). DINOv2's and SwAV's Sinkhorn-Knopp
// balances every rank's rows together through the batch gather (set_batch_gather below; or a
// communicator's all-reduce with dist::sync_sinkhorn_knopp; per rank with unsync_sinkhorn_knopp). A method that draws per-image randomness itself (masks) and offers
// set_replica(rank, world_size) draws its rows of the global batch's draw. Buffers are synchronised after every after_step by
// `buffer_policy(name)`: the default averages BN running statistics and DINO / iBOT centers over the
// ranks (for an EMA of batch means c <- m c + (1 - m) mean_r, the average over ranks is exactly the
// update with the global batch mean); everything else is kept (EMA teachers follow identical
// students and stay identical). MoCo v2's queue receives the keys of all ranks (gather_step_keys),
// so the queues stay identical too, and its key shuffle runs over the global batch (set_batch_gather:
// MoCo's shuffle-BN across GPUs).
//
// At construction rank 0's parameters and buffers are broadcast, so replicas start identical
// whatever seed each rank built its model with. The trainer (train/trainer.hpp) asks the wrapper
// whether to stop, so a wall-clock budget ends every rank at the same step.
//
//   ssl::dist::data_parallel dp(method, comm);
//   ssl::train(dp, opt, sharded_loader, options);   // checkpoint_path / csv_log on rank 0 only
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../methods/method.hpp"
#include "communicator.hpp"

namespace ssl::dist {

/// How a buffer is synchronised across ranks after each step.
enum class buffer_sync {
  keep,       // left as each rank has it
  mean,       // averaged over ranks
  broadcast,  // rank 0's copy
};

/// The default buffer policy: BN running mean / var and DINO's center / patch_center are averaged,
/// everything else is kept.
inline buffer_sync default_buffer_sync(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("running_mean") || ends_with("running_var") || name == "center" || ends_with(".center") ||
      ends_with("patch_center"))
    return buffer_sync::mean;
  return buffer_sync::keep;
}

struct data_parallel_options {
  std::function<buffer_sync(const std::string&)> buffer_policy = default_buffer_sync;
  bool broadcast_initial_state = true;  // rank 0's parameters and buffers to all ranks at construction
};

namespace detail {
using host_buffer_list = std::vector<std::pair<std::string, tensor<cpu>*>>;

/// The gather of one rank (names the type a gather_step_keys hook is called with; nvcc's front end
/// rejects a lambda inside a requires-expression).
struct rows_of_this_rank {
  tensor<cpu> operator()(const tensor<cpu>& t) const { return t; }
};

/// Flattens tensors into `flat` (reused), reduces, and writes the result back scaled by `scale`.
template <Communicator C>
void all_reduce_tensors(C& comm, const std::vector<tensor<cpu>*>& ts, std::vector<float>& flat, float scale) {
  int64_t n = 0;
  for (const auto* t : ts) n += t->numel();
  flat.resize(size_t(n));
  float* p = flat.data();
  for (const auto* t : ts) p = std::copy_n(t->data(), t->numel(), p);
  comm.all_reduce_sum(flat.data(), n);
  const float* q = flat.data();
  for (auto* t : ts) {
    float* d = t->data();
    for (int64_t i = 0; i < t->numel(); ++i) d[i] = q[i] * scale;
    q += t->numel();
  }
}
}  // namespace detail

/// Every rank's rows of `t` (n, ...) stacked in rank order: (W n, ...). Every rank passes the same shape.
template <Communicator C>
tensor<cpu> all_gather_rows(C& comm, const tensor<cpu>& t) {
  check<shape_error>(t.rank() >= 1, "all_gather_rows: expected a tensor with a batch dimension, got ", t.shape());
  shape s = t.shape();
  s[0] *= comm.world_size();
  tensor<cpu> out(s);
  comm.all_gather(t.data(), t.numel(), out.data());
  return out;
}

/// Broadcasts `root`'s parameter values and buffers of `m` (a Method or Module) to every rank.
template <class M, Communicator C>
void broadcast_state(M& m, C& comm, int root = 0) {
  param_list<cpu> ps;
  m.collect(ps, "");
  for (auto& r : ps) comm.broadcast(r.p->value.data(), r.p->value.numel(), root);
  detail::host_buffer_list bs;
  if constexpr (requires { m.collect_buffers(bs, std::string{}); }) m.collect_buffers(bs, "");
  for (auto& [name, t] : bs) comm.broadcast(t->data(), t->numel(), root);
}

/// The largest |difference| between any rank's parameter values and rank 0's: 0 when the replicas
/// are identical. The same value on every rank (a diagnostic for tests and debugging).
template <class M, Communicator C>
float max_replica_difference(M& m, C& comm) {
  param_list<cpu> ps;
  m.collect(ps, "");
  float worst = 0;
  std::vector<float> root;
  for (auto& r : ps) {
    const int64_t n = r.p->value.numel();
    root.assign(r.p->value.data(), r.p->value.data() + n);
    comm.broadcast(root.data(), n, 0);
    for (int64_t i = 0; i < n; ++i) {
      const float d = std::fabs(root[size_t(i)] - r.p->value.data()[i]);
      if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;
    }
  }
  std::vector<float> all(size_t(comm.world_size()));
  comm.all_gather(&worst, 1, all.data());
  float m_all = 0;
  for (float v : all) m_all = std::max(m_all, v);
  return m_all;
}

template <class M, Communicator C>
class data_parallel {
  static_assert(Method<M>, "ssl::dist::data_parallel<M, C>: M must satisfy ssl::Method");
  static_assert(std::same_as<typename M::backend_type, cpu>,
                "ssl::dist::data_parallel<M, C>: host (cpu) methods only; a device communicator (NCCL) is not "
                "part of the library yet");

 public:
  using backend_type = cpu;

  /// `method` and `comm` must outlive the wrapper.
  data_parallel(M& method, C& comm, data_parallel_options o = {}) : m_(&method), comm_(&comm), opt_(std::move(o)) {
    check<value_error>(bool(opt_.buffer_policy), "data_parallel: buffer_policy must be set");
    method.collect(params_, "");
    for (auto& r : params_) grads_.push_back(&r.p->grad);
    if constexpr (requires { method.collect_buffers(buffers_, std::string{}); }) method.collect_buffers(buffers_, "");
    for (auto& [name, t] : buffers_) {
      const buffer_sync s = opt_.buffer_policy(name);
      if (s == buffer_sync::mean) mean_buffers_.push_back(t);
      if (s == buffer_sync::broadcast) broadcast_buffers_.push_back(t);
    }
    if (opt_.broadcast_initial_state) broadcast_state(method, comm);
    // A method that draws per-image randomness itself (MAE's and MaskFeat's masks, DINOv2's iBOT
    // masks) learns its place in the global batch and draws its slice of the global draw.
    if constexpr (requires { method.set_replica(0, 1); }) method.set_replica(comm.rank(), comm.world_size());
    // A method that needs other ranks' rows inside its step (MoCo v2's shuffle-BN across ranks).
    if constexpr (requires { method.set_batch_gather(detail::rows_of_this_rank{}); })
      method.set_batch_gather([c = comm_](const tensor<cpu>& t) { return all_gather_rows(*c, t); });
  }

  /// Gives the method back as a single process: rank 0 of 1, no gather (which would outlive comm).
  ~data_parallel() {
    if constexpr (requires { m_->set_replica(0, 1); }) m_->set_replica(0, 1);
    if constexpr (requires { m_->set_batch_gather(detail::rows_of_this_rank{}); }) m_->set_batch_gather({});
  }
  data_parallel(const data_parallel&) = delete;
  data_parallel& operator=(const data_parallel&) = delete;

  /// The wrapped step on this rank's shard, then gradients and loss averaged over the ranks.
  step_stats train_step(const std::vector<tensor<cpu>>& views) {
    step_stats s = m_->train_step(views);
    detail::all_reduce_tensors(*comm_, grads_, flat_, 1.0f / float(comm_->world_size()));
    s.loss = all_reduce_mean(*comm_, s.loss);
    return s;
  }

  /// The wrapped after_step (EMA teachers, queues, centers), then the buffer policy. A method with
  /// a queue of keys (moco_v2_method::gather_step_keys) first gets the keys of every rank's batch.
  void after_step(const step_info& info) {
    if constexpr (requires { m_->gather_step_keys(detail::rows_of_this_rank{}); })
      m_->gather_step_keys([this](const tensor<cpu>& keys) { return all_gather_rows(*comm_, keys); });
    m_->after_step(info);
    if (!mean_buffers_.empty())
      detail::all_reduce_tensors(*comm_, mean_buffers_, flat_, 1.0f / float(comm_->world_size()));
    for (auto* t : broadcast_buffers_) comm_->broadcast(t->data(), t->numel(), 0);
  }

  /// The trainer's stop vote: every rank stops when any rank wants to (a wall-clock budget).
  bool agree_to_stop(bool local) {
    float v = local ? 1.0f : 0.0f;
    comm_->all_reduce_sum(&v, 1);
    return v > 0.0f;
  }

  void collect(param_list<cpu>& out, const std::string& prefix) { m_->collect(out, prefix); }
  void collect_buffers(detail::host_buffer_list& out, const std::string& prefix) {
    if constexpr (requires { m_->collect_buffers(out, prefix); }) m_->collect_buffers(out, prefix);
  }

  decltype(auto) encoder() { return m_->encoder(); }
  M& method() { return *m_; }
  C& communicator() { return *comm_; }
  int rank() const { return comm_->rank(); }
  int world_size() const { return comm_->world_size(); }

 private:
  M* m_;
  C* comm_;
  data_parallel_options opt_;
  param_list<cpu> params_;
  std::vector<tensor<cpu>*> grads_;
  detail::host_buffer_list buffers_;
  std::vector<tensor<cpu>*> mean_buffers_, broadcast_buffers_;
  std::vector<float> flat_;
};

}  // namespace ssl::dist
