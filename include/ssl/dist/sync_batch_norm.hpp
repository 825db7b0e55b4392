#pragma once
// sync_batch_norm(m, comm): SyncBatchNorm for every BatchNorm of a module: train-mode statistics
// over the batches of all ranks together (the mean and variance of the global batch, as SimCLR's
// "global BN" and BYOL's SyncBN), and their gradients summed over the ranks in backward.
//
//   convnet_s<> enc(1, rng(0));
//   projection_mlp<> head({...});
//   dist::sync_batch_norm(enc, comm);     // before composing: teacher copies share the setting
//   dist::sync_batch_norm(head, comm);
//   simclr m(enc, head, dist::global_nt_xent<C>(comm));
//   dist::data_parallel dp(m, comm);      // W ranks of batch B now train exactly as one process of B W
//
// Every train-mode forward and backward of a synchronised BN is a collective: all ranks must run it
// together. Before training or recalibrating a copy on one rank alone (evaluation), call
// unsync_batch_norm on that copy. Host (cpu) modules only.
#include "../nn/batch_norm.hpp"
#include "communicator.hpp"

namespace ssl::dist {

namespace detail {
template <class C>
ops::batch_norm_all_reduce sum_over(C& comm) {
  return [c = &comm](float* p, int64_t n) { c->all_reduce_sum(p, n); };
}
}  // namespace detail

/// One BatchNorm.
template <Communicator C>
void sync_batch_norm(batch_norm<cpu>& bn, C& comm) {
  bn.set_all_reduce(detail::sum_over(comm));
}
/// Every BatchNorm of a composite module (encoders and heads with for_each_batch_norm).
template <HasBatchNorms M, Communicator C>
void sync_batch_norm(M& m, C& comm) {
  m.for_each_batch_norm([&](auto& bn) { bn.set_all_reduce(detail::sum_over(comm)); });
}

/// Back to per-replica statistics.
inline void unsync_batch_norm(batch_norm<cpu>& bn) { bn.set_all_reduce({}); }
template <HasBatchNorms M>
void unsync_batch_norm(M& m) {
  m.for_each_batch_norm([](auto& bn) { bn.set_all_reduce({}); });
}

}  // namespace ssl::dist
