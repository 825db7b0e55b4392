#pragma once
// sync_sinkhorn_knopp(method, comm): DINOv2's distributed Sinkhorn-Knopp for a data-parallel
// dino_method (centering::sinkhorn_knopp) or swav_method, through the communicator's all-reduce: the
// teacher targets (codes) of each rank's rows are those of the global batch. (Under data_parallel the
// methods do this by default through its batch gather; this replaces the W-row gathers with
// all-reduces. unsync_sinkhorn_knopp: each rank's own rows only.) Per iteration the K prototype sums are all-reduced (and once the per-prototype maxima
// and the row count), as the official code's dist.all_reduce(sum_of_rows) with B = rows x world size;
// the iBOT patch targets likewise over every rank's hidden patches.
//
//   dino_method m(vit<>(...), dino_head<>(...), dino_options::dinov2());
//   dist::sync_sinkhorn_knopp(m, comm);   // before data_parallel: copies share the setting
//   dist::data_parallel dp(m, comm);
//
// Every train_step then holds collectives: all ranks step together (as data_parallel does).
// Host (cpu) methods only.
#include <algorithm>
#include <vector>

#include "../losses/sinkhorn_knopp.hpp"
#include "communicator.hpp"

namespace ssl::dist {

/// The reductions of a Sinkhorn-Knopp over the ranks of `comm` (which must outlive its use):
/// sums by all_reduce_sum, maxima by all_gather and a per-element maximum.
template <Communicator C>
sinkhorn_group sinkhorn_group_of(C& comm) {
  sinkhorn_group g;
  g.sum = [c = &comm](float* p, int64_t n) { c->all_reduce_sum(p, n); };
  g.max = [c = &comm](float* p, int64_t n) {
    const int W = c->world_size();
    std::vector<float> all(static_cast<size_t>(n) * static_cast<size_t>(W));
    c->all_gather(p, n, all.data());
    for (int r = 0; r < W; ++r)
      for (int64_t i = 0; i < n; ++i) p[i] = std::max(p[i], all[size_t(r) * size_t(n) + size_t(i)]);
  };
  return g;
}

/// Makes a method's Sinkhorn-Knopp targets global (a method with set_sinkhorn_group: dino_method).
template <class M, Communicator C>
  requires requires(M& m, sinkhorn_group g) { m.set_sinkhorn_group(g); }
void sync_sinkhorn_knopp(M& method, C& comm) {
  method.set_sinkhorn_group(sinkhorn_group_of(comm));
}
/// Each rank's own rows only (W smaller batches); set_sinkhorn_automatic() restores the default.
template <class M>
  requires requires(M& m, sinkhorn_group g) { m.set_sinkhorn_group(g); }
void unsync_sinkhorn_knopp(M& method) {
  method.set_sinkhorn_group({});
}

}  // namespace ssl::dist
