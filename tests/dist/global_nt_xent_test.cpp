// global_nt_xent over W ranks equals ssl::nt_xent over the whole global batch: the mean of the
// ranks' values is the global loss, and rank r's gradient is W times the global loss's gradient on
// r's rows (data_parallel then averages the parameter gradients over the W ranks).
#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/dist/global_nt_xent.hpp>
#include <ssl/dist/thread_group.hpp>
#include <vector>

using namespace ssl;
using namespace ssl::dist;

namespace {
// Global embeddings (2 n W, D): rows [view 1 of all nW images; view 2 of all nW images].
tensor<cpu> global_batch(int64_t n, int W, int64_t D) {
  rng g(42);
  tensor<cpu> z(shape{2 * n * W, D});
  for (int64_t i = 0; i < z.numel(); ++i) z[i] = g.normal();
  return z;
}
// Row of the global batch held as local row i by rank q (local rows: [view 1 of its n; view 2]).
int64_t global_row(int64_t i, int q, int64_t n, int W) { return i < n ? q * n + i : n * W + q * n + (i - n); }
}  // namespace

TEST_CASE("global_nt_xent matches nt_xent over the global batch") {
  const int64_t n = 3, D = 5;
  for (int W : {1, 2, 3}) {
    for (float T : {0.5f, 0.1f}) {
      CAPTURE(W, T);
      const tensor<cpu> Z = global_batch(n, W, D);
      const nt_xent_result ref = nt_xent(T)(Z);
      std::vector<float> values(static_cast<size_t>(W));
      std::vector<tensor<cpu>> grads(static_cast<size_t>(W));
      thread_group(W).run([&](thread_communicator& comm) {
        const int q = comm.rank();
        tensor<cpu> z(shape{2 * n, D});
        for (int64_t i = 0; i < 2 * n; ++i)
          for (int64_t d = 0; d < D; ++d) z[i * D + d] = Z[global_row(i, q, n, W) * D + d];
        const global_nt_xent<thread_communicator> loss(comm, T);
        CHECK(loss.temperature() == T);
        const nt_xent_result r = loss(z);
        values[size_t(q)] = r.value;
        grads[size_t(q)] = r.grad_z;
        CHECK(r.grad_bank.rank() == 0);  // no bank gradient: as ssl::nt_xent without a bank
      });
      double mean = 0;
      for (float v : values) mean += v / W;
      CHECK(mean == Approx(ref.value).epsilon(1e-5));
      for (int q = 0; q < W; ++q)
        for (int64_t i = 0; i < 2 * n; ++i)
          for (int64_t d = 0; d < D; ++d)
            CHECK(grads[size_t(q)][i * D + d] == Approx(W * ref.grad_z[global_row(i, q, n, W) * D + d]).margin(1e-6));
    }
  }
}

TEST_CASE("global_nt_xent rejects ranks with different shapes on every rank") {
  std::vector<int> failed(2, 0);
  CHECK_THROWS_AS(thread_group(2).run([&](thread_communicator& comm) {
                    tensor<cpu> z(shape{comm.rank() == 0 ? 4 : 6, 3}, 0.5f);
                    try {
                      global_nt_xent<thread_communicator>{comm}(z);
                    } catch (const shape_error&) {
                      failed[size_t(comm.rank())] = 1;
                      throw;
                    }
                  }),
                  shape_error);
  CHECK(failed == std::vector<int>{1, 1});
  CHECK_THROWS_AS(thread_group(2).run([&](thread_communicator& comm) {
                    global_nt_xent<thread_communicator>{comm}(tensor<cpu>(shape{3, 3}, 0.5f));
                  }),
                  shape_error);
}
