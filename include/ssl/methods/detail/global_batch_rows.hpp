#pragma once
// A data-parallel replica's view of the global batch, for the methods whose loss every replica
// computes over the whole global batch (triplet mining, Barlow Twins, VICReg, NNCLR under
// dist::data_parallel):
//   global_batch            its place (set_replica) and the gather of every rank's rows
//                           (set_batch_gather), both handed over by data_parallel
//   own_rows_times_world    a replica's share of that loss's gradient: each of the W replicas holds
//                           the same L, so the gradient its own rows receive from all of them is
//                           W dL/dz; data_parallel's average over ranks then gives the single
//                           process's gradient.
#include <cstdint>
#include <functional>
#include <utility>

#include "../../tensor/tensor.hpp"
#include "replica_place.hpp"

namespace ssl::methods_detail {

/// g: (W n, D) gradient over the global batch, rows in rank order -> W g[r n .. (r + 1) n): (n, D).
inline tensor<cpu> own_rows_times_world(const tensor<cpu>& g, const replica_place& place, int64_t n) {
  const int64_t D = g.dim(1), first = place.first_row(n);
  const float W = float(place.world_size);
  tensor<cpu> mine(shape{n, D});
  for (int64_t i = 0; i < n * D; ++i) mine[i] = W * g[first * D + i];
  return mine;
}

struct global_batch {
  replica_place place;
  std::function<tensor<cpu>(const tensor<cpu>&)> gather;  // every rank's rows, in rank order (host only)

  /// Whether the loss covers every rank's rows: a gather is set and W > 1.
  bool active() const { return place.world_size > 1 && bool(gather); }
  /// Every rank's rows of t (n, ...): (W n, ...), checked; `who` names the method in the error.
  tensor<cpu> all_rows(const tensor<cpu>& t, const char* who) const {
    const int64_t n = t.rank() >= 1 ? t.dim(0) : 0, W = place.world_size;
    tensor<cpu> all = gather(t);
    bool same_rows = all.rank() == t.rank() && all.rank() >= 1 && all.dim(0) == W * n;
    for (int64_t d = 1; same_rows && d < t.rank(); ++d) same_rows = all.dim(d) == t.dim(d);
    check<shape_error>(same_rows, who, ": the batch gather returned ", all.shape(), " for ", W, " ranks of ", n,
                       " rows of ", t.shape());
    return all;
  }
  /// W g[r n .. (r + 1) n): this replica's share of a gradient g (W n, D) over the global batch.
  tensor<cpu> own_share(const tensor<cpu>& g, int64_t n) const { return own_rows_times_world(g, place, n); }
};

}  // namespace ssl::methods_detail
