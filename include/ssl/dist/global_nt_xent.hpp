#pragma once
// global_nt_xent<C>: NT-Xent over the global batch of a data-parallel run (SimCLR's negatives from
// every replica), as a Loss that composes into ssl::simclr like ssl::nt_xent does:
//   ssl::simclr<E, H, ssl::dist::global_nt_xent<C>> m(enc, head, ssl::dist::global_nt_xent<C>(comm, 0.5f));
//
// Rank r holds z_r: (2n, D), rows [view 1 of its n images; view 2]. The global loss is NT-Xent over
// all 2nW rows, each row's positive its other view, every other row of every rank a negative:
//   L = (1/W) sum_r L_r,  L_r = nt_xent(z_r, bank = the other ranks' rows)   (the mean over r's rows)
// so rank r computes its own rows' terms against the gathered keys: one (2n, 2nW) similarity
// matrix per rank. Its gradient with respect to z_r collects r's own terms plus the other ranks'
// terms in which z_r is a key:
//   dz_r = d L_r / d z_r + sum_{q != r} d L_q / d z_r      (the second part: one all-reduce)
// With data_parallel averaging the parameter gradients over ranks, the update equals a single
// process's NT-Xent step on the whole global batch. `value` is this rank's L_r (data_parallel
// reports the mean over ranks, which is L). One rank: exactly ssl::nt_xent.
#include <cstdint>
#include <vector>

#include "../losses/nt_xent.hpp"
#include "communicator.hpp"

namespace ssl::dist {

template <Communicator C>
class global_nt_xent {
 public:
  /// `comm` must outlive the loss.
  explicit global_nt_xent(C& comm, float temperature = 0.5f) : comm_(&comm), loss_(temperature) {}
  float temperature() const { return loss_.temperature(); }

  /// z: (2n, D) this rank's embeddings; every rank must pass the same shape.
  nt_xent_result operator()(const tensor<cpu>& z) const {
    const int W = comm_->world_size(), me = comm_->rank();
    // every rank checks every rank's shape first, so a mismatch fails on all ranks alike
    expect_same_shape_on_all_ranks(*comm_, z.rank() == 2 ? z.dim(0) : -1, z.rank() == 2 ? z.dim(1) : -1,
                                   "global_nt_xent");
    if (W == 1) return loss_(z);
    check<shape_error>(z.rank() == 2, "global_nt_xent z: expected (2n, D), got ", z.shape());
    const int64_t R = z.dim(0), D = z.dim(1), block = R * D;

    // gathered: (W R, D), rank q's rows at [q R, (q + 1) R); bank: the other ranks' rows in rank order.
    std::vector<float> gathered(size_t(W * block));
    comm_->all_gather(z.data(), block, gathered.data());
    tensor<cpu> bank(shape{R * (W - 1), D});
    for (int q = 0, k = 0; q < W; ++q)
      if (q != me) std::copy_n(gathered.data() + q * block, block, bank.data() + (k++) * block);

    nt_xent_result r = loss_(z, bank);

    // The key gradients this rank produced, placed in the owners' slots; summed over ranks, slot r
    // holds sum_{q != r} dL_q / dz_r.
    std::vector<float>& keys = gathered;  // reused: (W R, D)
    std::fill(keys.begin(), keys.end(), 0.0f);
    for (int q = 0, k = 0; q < W; ++q)
      if (q != me) std::copy_n(r.grad_bank.data() + (k++) * block, block, keys.data() + q * block);
    comm_->all_reduce_sum(keys.data(), int64_t(keys.size()));
    float* g = r.grad_z.data();
    const float* from_others = keys.data() + me * block;
    for (int64_t i = 0; i < block; ++i) g[i] += from_others[i];
    r.grad_bank = tensor<cpu>();
    return r;
  }

 private:
  C* comm_;
  nt_xent loss_;
};

}  // namespace ssl::dist
