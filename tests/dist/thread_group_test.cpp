// The in-process communicator: every collective against values computed by hand, identical
// results on every rank, and failures that release the other ranks instead of deadlocking them.
#include <catch2/catch.hpp>
#include <atomic>
#include <ssl/dist/thread_group.hpp>
#include <stdexcept>
#include <vector>

using namespace ssl;
using namespace ssl::dist;

TEST_CASE("thread_group collectives give every rank the expected values") {
  const int W = 3;
  const int64_t n = 7;
  std::vector<std::vector<float>> reduced(W), gathered(W), broadcasted(W);
  thread_group(W).run([&](thread_communicator& comm) {
    const int r = comm.rank();
    REQUIRE(comm.world_size() == W);
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(r * 100 + i) + 0.25f;
    std::vector<float> s = x;
    comm.all_reduce_sum(s.data(), n);
    std::vector<float> g(size_t(W * n), -1.0f);
    comm.all_gather(x.data(), n, g.data());
    std::vector<float> b = x;
    comm.broadcast(b.data(), n, 1);
    comm.barrier();
    reduced[size_t(r)] = s;
    gathered[size_t(r)] = g;
    broadcasted[size_t(r)] = b;
  });
  for (int r = 0; r < W; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      CHECK(reduced[size_t(r)][size_t(i)] == float(300 + 3 * i) + 0.75f);
      CHECK(broadcasted[size_t(r)][size_t(i)] == float(100 + i) + 0.25f);
      for (int q = 0; q < W; ++q) CHECK(gathered[size_t(r)][size_t(q * n + i)] == float(q * 100 + i) + 0.25f);
    }
    CHECK(reduced[size_t(r)] == reduced[0]);
  }
}

TEST_CASE("thread_group all_reduce_sum is bit-identical across ranks and reruns") {
  // Values whose float sum depends on the order: rank order is the order on every rank.
  auto once = [] {
    std::vector<std::vector<float>> out(4);
    thread_group(4).run([&](thread_communicator& comm) {
      std::vector<float> x(1000);
      for (size_t i = 0; i < x.size(); ++i) x[i] = float((comm.rank() + 1) * 1e7 + 1) / float(i + 3) * 1e-3f;
      comm.all_reduce_sum(x.data(), int64_t(x.size()));
      out[size_t(comm.rank())] = x;
    });
    return out;
  };
  const auto a = once(), b = once();
  for (int r = 0; r < 4; ++r) {
    CHECK(a[size_t(r)] == a[0]);
    CHECK(b[size_t(r)] == a[0]);
  }
}

TEST_CASE("thread_group collectives handle size 0 and one rank") {
  thread_group(2).run([](thread_communicator& comm) {
    comm.all_reduce_sum(nullptr, 0);
    comm.all_gather(nullptr, 0, nullptr);
    comm.broadcast(nullptr, 0, 0);
  });
  thread_group(1).run([](thread_communicator& comm) {
    float v = 2.5f;
    comm.all_reduce_sum(&v, 1);
    CHECK(v == 2.5f);
    CHECK(all_reduce_mean(comm, 3.0f) == 3.0f);
  });
  single_process one;
  float v[2] = {1, 2}, g[2] = {0, 0};
  one.all_reduce_sum(v, 2);
  one.all_gather(v, 2, g);
  CHECK(g[1] == 2.0f);
  CHECK_THROWS_AS(one.broadcast(v, 2, 1), value_error);
}

TEST_CASE("thread_group all_reduce_mean averages one value per rank") {
  std::vector<float> got(4);
  thread_group(4).run([&](thread_communicator& comm) { got[size_t(comm.rank())] = all_reduce_mean(comm, float(comm.rank())); });
  for (float v : got) CHECK(v == 1.5f);
}

TEST_CASE("thread_group rejects bad arguments with typed errors") {
  CHECK_THROWS_AS(thread_group(0), value_error);
  CHECK_THROWS_AS(thread_group(2, 0), value_error);
  // Ranks that disagree on the size all fail with a message naming both sizes.
  CHECK_THROWS_WITH(thread_group(2).run([](thread_communicator& comm) {
                      std::vector<float> x(4);
                      comm.all_reduce_sum(x.data(), comm.rank() == 0 ? 4 : 3);
                    }),
                    Catch::Contains("every rank must pass the same size"));
  CHECK_THROWS_AS(thread_group(2).run([](thread_communicator& comm) {
                    float x = 0;
                    comm.broadcast(&x, 1, 2);
                  }),
                  value_error);
}

TEST_CASE("a rank that throws releases the others and run() rethrows its exception") {
  std::atomic<int> released{0};
  CHECK_THROWS_WITH(thread_group(3).run([&](thread_communicator& comm) {
                      if (comm.rank() == 1) throw std::runtime_error("rank 1 broke");
                      try {
                        for (int i = 0; i < 5; ++i) comm.barrier();
                      } catch (const rank_failure&) {
                        ++released;
                        throw;
                      }
                    }),
                    "rank 1 broke");
  CHECK(released == 2);
}
