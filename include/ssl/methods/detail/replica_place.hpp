#pragma once
// replica_place: where a data-parallel replica's rows sit in the global batch (set_replica).
#include <cstdint>

#include "../../core/error.hpp"

namespace ssl::methods_detail {

/// A replica's place in data-parallel training (set_replica, called by dist::data_parallel): rank r
/// of W trains on rows [r B, (r + 1) B) of the global batch of W B rows, so per-image draws (masks,
/// puzzles) start at the global row r B.
struct replica_place {
  int64_t rank = 0, world_size = 1;
  void set(int r, int w) {
    check<value_error>(w >= 1 && r >= 0 && r < w, "set_replica: expected 0 <= rank < world_size, got ", r, " of ", w);
    rank = r;
    world_size = w;
  }
  /// The global row of this replica's first row, for a local batch of `local_rows`.
  int64_t first_row(int64_t local_rows) const { return rank * local_rows; }
};

}  // namespace ssl::methods_detail
