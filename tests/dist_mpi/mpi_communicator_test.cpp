// mpi_communicator on the ranks of mpirun (ctest runs 2): every collective against values
// computed by hand, identical sums on every rank, chunking, size 0, and input errors that every
// rank throws before any MPI call (so no rank is left waiting in a collective).
#include <catch2/catch.hpp>
#include <cstring>
#include <ssl/dist/mpi_communicator.hpp>
#include <string>
#include <vector>

using namespace ssl;
using namespace ssl::dist;

namespace {
// Rank r's element i: r*100 + i + 0.25 (exact in float).
std::vector<float> rank_values(int r, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(r * 100 + i) + 0.25f;
  return x;
}

// Checks every collective of `comm` on n elements against the expected values.
void check_collectives(mpi_communicator& comm, int64_t n) {
  const int r = comm.rank(), W = comm.world_size();
  const std::vector<float> x = rank_values(r, n);

  std::vector<float> s = x;
  comm.all_reduce_sum(s.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    float want = 0;
    for (int q = 0; q < W; ++q) want += float(q * 100 + i) + 0.25f;
    CHECK(s[size_t(i)] == want);
  }

  std::vector<float> g(size_t(W * n), -1.0f);
  comm.all_gather(x.data(), n, g.data());
  for (int q = 0; q < W; ++q)
    for (int64_t i = 0; i < n; ++i) CHECK(g[size_t(q * n + i)] == float(q * 100 + i) + 0.25f);

  // In place: this rank's input already sits in its slot of the output.
  std::vector<float> gi(size_t(W * n), -1.0f);
  std::copy(x.begin(), x.end(), gi.begin() + r * n);
  comm.all_gather(gi.data() + r * n, n, gi.data());
  CHECK(gi == g);

  const int root = W > 1 ? 1 : 0;
  std::vector<float> b = x;
  comm.broadcast(b.data(), n, root);
  CHECK(b == rank_values(root, n));
  comm.barrier();
}
}  // namespace

TEST_CASE("mpi_communicator collectives give every rank the expected values") {
  mpi_communicator comm;
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  REQUIRE(comm.world_size() == world);
  CHECK(comm.rank() >= 0);
  CHECK(comm.rank() < world);
  check_collectives(comm, 7);
  check_collectives(comm, 1);
}

TEST_CASE("mpi_communicator splits counts above max_count into chunks") {
  // max_count 3 stands for INT_MAX: 10 elements go as chunks of 3, 3, 3, 1 (all_gather through the
  // strided datatype).
  mpi_communicator comm(MPI_COMM_WORLD, 3);
  check_collectives(comm, 10);
  check_collectives(comm, 3);
  check_collectives(comm, 2);
}

TEST_CASE("mpi_communicator all_reduce_sum is bit-identical on every rank") {
  mpi_communicator comm;
  const int W = comm.world_size();
  // Values whose float sum depends on the order of the additions.
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float((comm.rank() + 1) * 1e7 + 1) / float(i + 3) * 1e-3f;
  comm.all_reduce_sum(x.data(), int64_t(x.size()));
  std::vector<float> all(x.size() * size_t(W));
  comm.all_gather(x.data(), int64_t(x.size()), all.data());
  for (int q = 0; q < W; ++q)
    CHECK(std::memcmp(all.data() + size_t(q) * x.size(), x.data(), x.size() * sizeof(float)) == 0);
}

TEST_CASE("mpi_communicator handles size 0") {
  mpi_communicator comm;
  comm.all_reduce_sum(nullptr, 0);
  comm.all_gather(nullptr, 0, nullptr);
  comm.broadcast(nullptr, 0, 0);
  float v = 1.0f;
  comm.all_reduce_sum(&v, 0);
  CHECK(v == 1.0f);
  comm.barrier();
}

TEST_CASE("mpi_communicator rejects bad input on every rank before any MPI call") {
  // Every rank passes the same bad argument, so every rank throws and none waits in a collective;
  // the barrier and the sum after show the ranks are still in step.
  mpi_communicator comm;
  const int W = comm.world_size();
  std::vector<float> p(4, 1.0f), out(4 * size_t(W));
  CHECK_THROWS_AS(comm.broadcast(p.data(), 4, W), value_error);
  CHECK_THROWS_AS(comm.broadcast(p.data(), 4, -1), value_error);
  CHECK_THROWS_AS(comm.broadcast(p.data(), -1, 0), value_error);
  CHECK_THROWS_AS(comm.all_reduce_sum(p.data(), -2), value_error);
  CHECK_THROWS_AS(comm.all_gather(p.data(), -3, out.data()), value_error);
  CHECK_THROWS_AS(mpi_communicator(MPI_COMM_NULL), value_error);
  CHECK_THROWS_AS(mpi_communicator(MPI_COMM_WORLD, 0), value_error);
  comm.barrier();
  comm.all_reduce_sum(p.data(), 4);
  CHECK(p[3] == float(W));
}

TEST_CASE("mpi_communicator turns MPI error codes into dist_error with MPI's message") {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(MPI_ERR_COUNT, msg, &len);
  try {
    dist::detail::check_mpi(MPI_ERR_COUNT, "who");
    FAIL("no exception");
  } catch (const dist_error& e) {
    const std::string what = e.what();
    CHECK(what.find("who: ") == 0);
    CHECK(what.find(std::string(msg, size_t(len))) != std::string::npos);
  }
  CHECK_NOTHROW(dist::detail::check_mpi(MPI_SUCCESS, "who"));

  // The duplicated communicator returns errors instead of aborting: a root out of range given to
  // MPI directly fails argument checking on every rank alike.
  mpi_communicator comm;
  float v = 0;
  const int bad_root = comm.world_size() + 3;
  CHECK_THROWS_AS(dist::detail::check_mpi(MPI_Bcast(&v, 1, MPI_FLOAT, bad_root, comm.native()), "MPI_Bcast"),
                  dist_error);
  comm.barrier();
}

TEST_CASE("mpi_communicator over a sub-communicator, and moved") {
  // One communicator per rank (MPI_Comm_split by rank): a world of 1.
  MPI_Comm self_comm = MPI_COMM_NULL;
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  REQUIRE(MPI_Comm_split(MPI_COMM_WORLD, world_rank, 0, &self_comm) == MPI_SUCCESS);
  {
    mpi_communicator one(self_comm);
    CHECK(one.rank() == 0);
    CHECK(one.world_size() == 1);
    float v[2] = {1.5f, 2.0f}, g[2] = {0, 0};
    one.all_reduce_sum(v, 2);
    one.all_gather(v, 2, g);
    one.broadcast(v, 2, 0);
    CHECK(g[1] == 2.0f);
    CHECK(all_reduce_mean(one, 3.0f) == 3.0f);
    CHECK_THROWS_AS(one.broadcast(v, 2, 1), value_error);
  }
  MPI_Comm_free(&self_comm);

  mpi_communicator a;
  mpi_communicator b(std::move(a));
  CHECK(b.world_size() >= 1);
  b.barrier();
}

TEST_CASE("all_reduce_mean works over MPI") {
  mpi_communicator comm;
  const int W = comm.world_size();
  // mean of 1, 2, ..., W = (W + 1) / 2, the same on every rank.
  const float m = all_reduce_mean(comm, float(comm.rank() + 1));
  CHECK(m == float(W + 1) / 2.0f);
  std::vector<float> all(static_cast<size_t>(W));
  comm.all_gather(&m, 1, all.data());
  for (float v : all) CHECK(v == m);
}
