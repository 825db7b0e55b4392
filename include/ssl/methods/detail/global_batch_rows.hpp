#pragma once
// own_rows_times_world: a replica's share of the gradient of a loss that every data-parallel
// replica computes over the whole global batch (triplet mining, Barlow Twins, VICReg under
// dist::data_parallel). Each of the W replicas holds the same L, so the gradient its own rows
// receive from all of them is W dL/dz; data_parallel's average over ranks then gives the single
// process's gradient.
#include <cstdint>

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

}  // namespace ssl::methods_detail
