#pragma once
// sinkhorn_sync: whose rows a method's Sinkhorn-Knopp balances under data-parallel training (DINOv2's
// teacher targets, SwAV's codes). The official codes all-reduce the per-prototype sums over every
// GPU (B = the global batch); here that is the default under dist::data_parallel:
//   automatic (default)  the reductions go through data_parallel's batch gather (set_batch_gather)
//                        when W > 1; one process: its own rows
//   group                an explicit sinkhorn_group (dist::sync_sinkhorn_knopp: a communicator's
//                        all-reduce, one collective per reduction instead of a gather)
//   local                each rank balances its own rows only (dist::unsync_sinkhorn_knopp)
// Host (cpu) only: the reductions run on host memory.
#include <algorithm>
#include <functional>
#include <memory>
#include <utility>

#include "../../core/error.hpp"
#include "../../losses/sinkhorn_knopp.hpp"

namespace ssl::methods_detail {

class sinkhorn_sync {
 public:
  using gather_fn = std::function<tensor<cpu>(const tensor<cpu>&)>;

  /// An explicit group (both reductions), or an empty one: local rows only. `method` names the
  /// caller in errors; `host` is whether its backend is cpu.
  void set_group(sinkhorn_group g, bool host, const char* method) {
    const bool empty = !g.sum && !g.max;
    check<value_error>(host || empty, method, "::set_sinkhorn_group: data-parallel Sinkhorn-Knopp is host (cpu) only");
    check<value_error>(empty || (g.sum && g.max), method, "::set_sinkhorn_group: a sinkhorn_group needs both sum and max");
    group_ = empty ? nullptr : std::make_shared<const sinkhorn_group>(std::move(g));
    mode_ = empty ? mode::local : mode::group;
  }
  /// Back to the default: the batch gather's reductions under data_parallel.
  void set_automatic() {
    group_ = nullptr;
    mode_ = mode::automatic;
  }
  /// data_parallel's gather of every rank's rows (empty: removed).
  void set_gather(gather_fn gather) { gathered_ = gather ? group_from_gather(std::move(gather)) : sinkhorn_group{}; }

  /// The reductions to hand to sinkhorn_knopp, for a replica of `world_size` ranks (null: local rows).
  const sinkhorn_group* group(int64_t world_size) const {
    if (mode_ == mode::group) return group_.get();
    if (mode_ == mode::automatic && world_size > 1 && gathered_.sum) return &gathered_;
    return nullptr;
  }
  bool synchronized(int64_t world_size) const { return group(world_size) != nullptr; }

 private:
  enum class mode { automatic, group, local };

  /// Sum and max over the ranks from a row gather: each rank's n values as one (1, n) row, gathered
  /// into (W, n) and combined in rank order (the same result on every rank).
  static sinkhorn_group group_from_gather(gather_fn gather) {
    auto reduce = [gather](bool take_max) {
      return [gather, take_max](float* p, int64_t n) {
        tensor<cpu> mine(shape{1, n});
        std::copy_n(p, n, mine.data());
        const tensor<cpu> all = gather(mine);
        check<shape_error>(all.rank() == 2 && all.dim(1) == n && all.dim(0) >= 1,
                           "sinkhorn_knopp: the batch gather returned ", all.shape(), " for rows of ", n, " values");
        for (int64_t i = 0; i < n; ++i) {
          float acc = all[i];
          for (int64_t r = 1; r < all.dim(0); ++r) acc = take_max ? std::max(acc, all[r * n + i]) : acc + all[r * n + i];
          p[i] = acc;
        }
      };
    };
    sinkhorn_group g;
    g.sum = reduce(false);
    g.max = reduce(true);
    return g;
  }

  mode mode_ = mode::automatic;
  std::shared_ptr<const sinkhorn_group> group_;  // mode::group's, shared by copies of the method
  sinkhorn_group gathered_;                       // from data_parallel's batch gather
};

}  // namespace ssl::methods_detail
