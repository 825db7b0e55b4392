#pragma once
// mpi_communicator: the Communicator concept over MPI, one rank per process under mpirun.
//
// NOT included by any umbrella header (it needs <mpi.h>): include it explicitly and link MPI,
//   CMake:  find_package(MPI REQUIRED COMPONENTS CXX)
//           target_link_libraries(app PRIVATE ssl::ssl MPI::MPI_CXX)
//   (or compile with mpicxx), then run e.g.  mpirun -np 2 ./app
//
//   int main(int argc, char** argv) {
//     ssl::dist::mpi_session mpi(argc, argv);   // MPI_Init_thread ... MPI_Finalize
//     ssl::dist::mpi_communicator comm;          // over MPI_COMM_WORLD
//     ...
//   }
//
// Collectives are float MPI_Allreduce (MPI_SUM) / MPI_Allgather / MPI_Bcast / MPI_Barrier on a
// duplicate of the given communicator (so its messages never mix with the caller's), with the
// MPI_ERRORS_RETURN handler: a failing MPI call throws dist_error naming MPI's error string.
// Counts above INT_MAX (MPI counts are int) are sent in chunks. Every rank must make the same
// calls with the same n (not checked across ranks: MPI may fail with a truncation error or hang).
// Input errors (n < 0, root out of range) are thrown before any MPI call, so when every rank
// passes the same bad argument every rank throws and none is left waiting in a collective.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "../core/error.hpp"
#include "communicator.hpp"

namespace ssl::dist {

/// An MPI call that failed (or MPI used in a state where it cannot work: not initialised ...).
struct dist_error : error {
  using error::error;
};

namespace detail {
/// Throws dist_error "<what>: <MPI error string> (MPI error <code>)" unless rc is MPI_SUCCESS.
inline void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) [[likely]]
    return;
  char msg[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
  throw dist_error(ssl::detail::concat(what, ": ", std::string_view(msg, size_t(std::max(len, 0))),
                                       " (MPI error ", rc, ")"));
}

inline bool mpi_initialized() {
  int init = 0, fin = 0;
  check_mpi(MPI_Initialized(&init), "MPI_Initialized");
  check_mpi(MPI_Finalized(&fin), "MPI_Finalized");
  return init && !fin;
}
}  // namespace detail

/// RAII MPI initialisation: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already initialised;
/// the destructor calls MPI_Finalize only if this session initialised MPI. FUNNELED: only the
/// thread that made the session calls MPI; the OpenMP compute threads never do.
class mpi_session {
 public:
  mpi_session() : mpi_session(nullptr, nullptr) {}
  mpi_session(int& argc, char**& argv) : mpi_session(&argc, &argv) {}
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session() {
    int fin = 1;
    if (owner_ && MPI_Finalized(&fin) == MPI_SUCCESS && !fin) MPI_Finalize();
  }

  /// The thread support MPI provides (MPI_THREAD_*); at least FUNNELED is expected.
  int provided() const { return provided_; }
  /// Whether this session called MPI_Init_thread (and so will call MPI_Finalize).
  bool owns_mpi() const { return owner_; }

 private:
  mpi_session(int* argc, char*** argv) {
    int init = 0, fin = 0;
    detail::check_mpi(MPI_Finalized(&fin), "mpi_session: MPI_Finalized");
    check<dist_error>(!fin, "mpi_session: MPI was already finalised and cannot be initialised again");
    detail::check_mpi(MPI_Initialized(&init), "mpi_session: MPI_Initialized");
    if (init) {
      detail::check_mpi(MPI_Query_thread(&provided_), "mpi_session: MPI_Query_thread");
      return;
    }
    detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided_), "mpi_session: MPI_Init_thread");
    owner_ = true;
  }

  bool owner_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// A rank of an MPI communicator; satisfies Communicator. Construct (and destroy) on every rank
/// of `comm` (MPI_Comm_dup / MPI_Comm_free are collective), between MPI_Init and MPI_Finalize.
class mpi_communicator {
 public:
  /// Over `comm` (default MPI_COMM_WORLD). `max_count` is the largest count passed to one MPI call
  /// (INT_MAX; a smaller value only serves to test the chunking).
  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD, int max_count = INT_MAX) : max_count_(max_count) {
    check<value_error>(comm != MPI_COMM_NULL, "mpi_communicator: comm is MPI_COMM_NULL");
    check<value_error>(max_count >= 1, "mpi_communicator: max_count must be >= 1, got ", max_count);
    check<dist_error>(detail::mpi_initialized(),
                      "mpi_communicator: MPI is not initialised (create an ssl::dist::mpi_session first)");
    detail::check_mpi(MPI_Comm_dup(comm, &comm_), "mpi_communicator: MPI_Comm_dup");
    detail::check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "mpi_communicator: MPI_Comm_set_errhandler");
    detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "mpi_communicator: MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(comm_, &world_), "mpi_communicator: MPI_Comm_size");
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;
  mpi_communicator(mpi_communicator&& o) noexcept
      : comm_(std::exchange(o.comm_, MPI_COMM_NULL)), rank_(o.rank_), world_(o.world_), max_count_(o.max_count_) {}
  mpi_communicator& operator=(mpi_communicator&& o) noexcept {
    if (this != &o) {
      release();
      comm_ = std::exchange(o.comm_, MPI_COMM_NULL);
      rank_ = o.rank_;
      world_ = o.world_;
      max_count_ = o.max_count_;
    }
    return *this;
  }
  ~mpi_communicator() { release(); }

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  /// The duplicated communicator the collectives run on.
  MPI_Comm native() const { return comm_; }

  /// p[i] <- sum over ranks of p[i], in place (MPI_Allreduce, MPI_SUM).
  void all_reduce_sum(float* p, int64_t n) {
    check<value_error>(n >= 0, "all_reduce_sum: n must be >= 0, got ", n);
    for (int64_t o = 0; o < n; o += max_count_)
      detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, p + o, chunk(n, o), MPI_FLOAT, MPI_SUM, comm_),
                        "all_reduce_sum: MPI_Allreduce");
  }

  /// out[r*n + i] <- rank r's in[i]; out holds world_size * n floats. `in` may be out + rank*n.
  void all_gather(const float* in, int64_t n, float* out) {
    check<value_error>(n >= 0, "all_gather: n must be >= 0, got ", n);
    const bool in_place = in == out + int64_t(rank_) * n;
    if (n <= max_count_) {
      detail::check_mpi(MPI_Allgather(in_place ? MPI_IN_PLACE : in, int(n), MPI_FLOAT, out, int(n), MPI_FLOAT, comm_),
                        "all_gather: MPI_Allgather");
      return;
    }
    // Chunk [o, o + m) of every rank: received as one block of m floats whose extent is n floats,
    // so rank r's block lands at out + r*n + o.
    for (int64_t o = 0; o < n; o += max_count_) {
      const int m = chunk(n, o);
      strided_block block(m, n);
      detail::check_mpi(MPI_Allgather(in_place ? MPI_IN_PLACE : in + o, m, MPI_FLOAT, out + o, 1, block.type, comm_),
                        "all_gather: MPI_Allgather");
    }
  }

  /// p[i] <- root's p[i] (MPI_Bcast).
  void broadcast(float* p, int64_t n, int root) {
    check<value_error>(n >= 0, "broadcast: n must be >= 0, got ", n);
    check<value_error>(root >= 0 && root < world_, "broadcast: root must be in [0, ", world_, "), got ", root);
    for (int64_t o = 0; o < n; o += max_count_)
      detail::check_mpi(MPI_Bcast(p + o, chunk(n, o), MPI_FLOAT, root, comm_), "broadcast: MPI_Bcast");
  }

  void barrier() { detail::check_mpi(MPI_Barrier(comm_), "barrier: MPI_Barrier"); }

 private:
  int chunk(int64_t n, int64_t o) const { return int(std::min<int64_t>(max_count_, n - o)); }

  // m contiguous floats with an extent of `stride` floats (a committed derived datatype, freed on scope exit).
  struct strided_block {
    strided_block(int m, int64_t stride) {
      MPI_Datatype contiguous = MPI_DATATYPE_NULL;
      detail::check_mpi(MPI_Type_contiguous(m, MPI_FLOAT, &contiguous), "all_gather: MPI_Type_contiguous");
      const int rc = MPI_Type_create_resized(contiguous, 0, MPI_Aint(stride) * MPI_Aint(sizeof(float)), &type);
      MPI_Type_free(&contiguous);
      detail::check_mpi(rc, "all_gather: MPI_Type_create_resized");
      const int rc_commit = MPI_Type_commit(&type);
      if (rc_commit != MPI_SUCCESS) MPI_Type_free(&type);
      detail::check_mpi(rc_commit, "all_gather: MPI_Type_commit");
    }
    strided_block(const strided_block&) = delete;
    strided_block& operator=(const strided_block&) = delete;
    ~strided_block() { MPI_Type_free(&type); }
    MPI_Datatype type = MPI_DATATYPE_NULL;
  };

  // Frees the duplicate (collective) unless MPI is already finalised; never throws.
  void release() noexcept {
    int fin = 1;
    if (comm_ != MPI_COMM_NULL && MPI_Finalized(&fin) == MPI_SUCCESS && !fin) MPI_Comm_free(&comm_);
    comm_ = MPI_COMM_NULL;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  int max_count_ = INT_MAX;
};

static_assert(Communicator<mpi_communicator>);

}  // namespace ssl::dist
