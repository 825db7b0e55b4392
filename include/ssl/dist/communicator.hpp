#pragma once
// The Communicator concept: the collective operations data-parallel training needs.
//
// World of `world_size()` ranks, each running the same program on its own share of the batch.
// Every rank must call the same collectives in the same order with the same sizes (as in MPI and
// NCCL); a mismatch is a programming error that the implementations detect where they can.
//
//   all_reduce_sum(p, n)      p[i] <- sum over ranks of p[i]                (in place, n floats)
//   all_gather(in, n, out)    out[r*n + i] <- rank r's in[i]                  (out: world_size * n)
//   broadcast(p, n, root)     p[i] <- root's p[i]
//   barrier()                 returns once every rank has entered it
//
// Determinism: every implementation here gives all ranks the bit-identical sum (summed in rank
// order by thread_communicator; by MPI's reduction, identical on all ranks), so replicas that
// apply the same update stay bit-identical.
//
// Satisfied by ssl::dist::single_process (one rank, no-ops), ssl::dist::thread_communicator
// (ranks as threads of one process, dist/thread_group.hpp) and ssl::dist::mpi_communicator
// (processes under mpirun, dist/mpi_communicator.hpp, only when <mpi.h> is available).
#include <concepts>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"

namespace ssl::dist {

template <class C>
concept Communicator = requires(C& c, const C& cc, float* p, const float* cp, int64_t n, int root) {
  { cc.rank() } -> std::convertible_to<int>;
  { cc.world_size() } -> std::convertible_to<int>;
  c.all_reduce_sum(p, n);
  c.all_gather(cp, n, p);
  c.broadcast(p, n, root);
  c.barrier();
};

/// One rank: every collective is the identity. Lets data-parallel code run unchanged in one process.
class single_process {
 public:
  int rank() const { return 0; }
  int world_size() const { return 1; }
  void all_reduce_sum(float*, int64_t n) { check<value_error>(n >= 0, "all_reduce_sum: n must be >= 0, got ", n); }
  void all_gather(const float* in, int64_t n, float* out) {
    check<value_error>(n >= 0, "all_gather: n must be >= 0, got ", n);
    if (in != out)
      for (int64_t i = 0; i < n; ++i) out[i] = in[i];
  }
  void broadcast(float*, int64_t n, int root) {
    check<value_error>(n >= 0 && root == 0, "broadcast: expected n >= 0 and root 0 of 1 rank, got n ", n, ", root ",
                       root);
  }
  void barrier() {}
};

static_assert(Communicator<single_process>);

/// The mean over ranks of one value per rank (a loss for logging, a metric), the same on every rank.
template <Communicator C>
float all_reduce_mean(C& comm, float v) {
  comm.all_reduce_sum(&v, 1);
  return v / float(comm.world_size());
}

/// Throws shape_error on every rank unless every rank passes the same (rows, cols): all ranks
/// learn all shapes (one all_gather), so none is left waiting in a later collective.
template <Communicator C>
void expect_same_shape_on_all_ranks(C& comm, int64_t rows, int64_t cols, const char* who) {
  const float mine[2] = {float(rows), float(cols)};
  std::vector<float> all(static_cast<size_t>(2 * comm.world_size()));
  comm.all_gather(mine, 2, all.data());
  for (int q = 0; q < comm.world_size(); ++q)
    check<shape_error>(all[size_t(2 * q)] == all[0] && all[size_t(2 * q + 1)] == all[1], who,
                       ": every rank must pass the same (n, D) shape; rank 0 has (", int64_t(all[0]), ", ",
                       int64_t(all[1]), "), rank ", q, " has (", int64_t(all[size_t(2 * q)]), ", ",
                       int64_t(all[size_t(2 * q + 1)]), ")");
}

}  // namespace ssl::dist
