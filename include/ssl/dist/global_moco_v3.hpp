#pragma once
// global_moco_v3<C>: MoCo v3's symmetric contrastive loss with the keys of every rank, as a Loss
// for ssl::moco_v3_method (MoCo v3's concat_all_gather of the keys):
//   ssl::moco_v3_method<E, P, Q, ssl::dist::global_moco_v3<C>> m(enc, proj, pred, ..., global_moco_v3<C>(comm, 0.2f));
//
// Rank r holds queries q1, q2 and momentum keys k1, k2: (n, D) each. The keys of all ranks are
// gathered, (W n, D) in rank order, and query row i's positive is key row r n + i; every other key
// of the global batch is a negative (logits (n, W n)). Keys are under stop-gradient, so nothing flows
// back to other ranks: L_r = ctr(q1, K2) + ctr(q2, K1) over r's queries, and the mean over ranks
// (data_parallel's) is the single-process loss on the global batch. One rank: ssl::moco_v3.
#include "../losses/moco.hpp"
#include "data_parallel.hpp"

namespace ssl::dist {

template <Communicator C>
class global_moco_v3 {
 public:
  /// `comm` must outlive the loss.
  explicit global_moco_v3(C& comm, float temperature = 1.0f) : comm_(&comm), loss_(temperature) {}
  float temperature() const { return loss_.temperature(); }

  /// q1, q2, k1, k2: (n, D), the same shape on every rank.
  moco_v3_result operator()(const tensor<cpu>& q1, const tensor<cpu>& q2, const tensor<cpu>& k1,
                            const tensor<cpu>& k2) const {
    check<shape_error>(k1.shape() == q1.shape() && k2.shape() == q2.shape() && q1.shape() == q2.shape() && q1.rank() == 2,
                       "global_moco_v3: expected q1, q2, k1, k2 of one (n, D) shape, got ", q1.shape(), ", ", q2.shape(),
                       ", ", k1.shape(), ", ", k2.shape());
    expect_same_shape_on_all_ranks(*comm_, q1.dim(0), q1.dim(1), "global_moco_v3");
    if (comm_->world_size() == 1) return loss_(q1, q2, k1, k2);
    return loss_(q1, q2, all_gather_rows(*comm_, k1), all_gather_rows(*comm_, k2), comm_->rank() * q1.dim(0));
  }

 private:
  C* comm_;
  moco_v3 loss_;
};

}  // namespace ssl::dist
