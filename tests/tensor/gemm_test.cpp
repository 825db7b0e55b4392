// ops::gemm against a double-precision naive product on shapes that cross every block boundary
// of the packed kernel (depth blocks of 256, row blocks of 240, column blocks of 512, tiles of
// 12 x 32 with 8-, 4- and 1-row tails), with padded strides, every transpose, alpha and beta.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <ssl/backend/cpu/gemm.hpp>
#include <ssl/core/parallel.hpp>
#include <ssl/core/rng.hpp>
#include <vector>

namespace {

struct gemm_case {
  int64_t M, N, K;
};

// C = alpha op(A) op(B) + beta C0 in double; also the bound sum |alpha a b| for the tolerance
void reference(bool ta, bool tb, const gemm_case& s, float alpha, const std::vector<float>& A, int64_t lda,
               const std::vector<float>& B, int64_t ldb, float beta, const std::vector<float>& C0, int64_t ldc,
               std::vector<double>& ref, std::vector<double>& bound) {
  ref.assign(size_t(s.M * ldc), 0.0);
  bound.assign(size_t(s.M * ldc), 0.0);
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < s.N; ++j) {
      double acc = 0, mag = 0;
      for (int64_t k = 0; k < s.K; ++k) {
        const double a = ta ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)];
        const double b = tb ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)];
        acc += a * b;
        mag += std::abs(a * b);
      }
      const double c0 = beta == 0.0f ? 0.0 : double(beta) * C0[size_t(i * ldc + j)];
      ref[size_t(i * ldc + j)] = alpha * acc + c0;
      bound[size_t(i * ldc + j)] = std::abs(alpha) * mag + std::abs(c0);
    }
}

}  // namespace

TEST_CASE("gemm: packed kernel matches a naive product across block boundaries, strides, alpha and beta") {
  ssl::rng g(11);
  const gemm_case cases[] = {{1, 1, 1},    {3, 70, 5},     {5, 40, 37},   {17, 9, 13},  {37, 100, 64},
                             {250, 520, 300}, {13, 600, 513}, {241, 33, 257}, {4, 8, 1024}, {100, 1, 70}};
  for (const auto& s : cases)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f, -0.5f}) {
          const float alpha = beta == 1.0f ? 1.0f : -0.75f;
          // padded leading dimensions: every row of the stored matrices is 3 floats longer
          const int64_t lda = (ta ? s.M : s.K) + 3, ldb = (tb ? s.K : s.N) + 3, ldc = s.N + 3;
          std::vector<float> A(size_t((ta ? s.K : s.M) * lda)), B(size_t((tb ? s.N : s.K) * ldb)),
              C(size_t(s.M * ldc));
          for (auto& x : A) x = g.normal();
          for (auto& x : B) x = g.normal();
          for (auto& x : C) x = g.normal();
          if (beta == 0.0f)  // beta = 0 must ignore C, NaN included
            for (auto& x : C) x = std::numeric_limits<float>::quiet_NaN();
          const std::vector<float> C0 = C;
          std::vector<double> ref, bound;
          reference(ta, tb, s, alpha, A, lda, B, ldb, beta, C0, ldc, ref, bound);
          ssl::ops::gemm(ssl::cpu{}, ssl::ops::trans(ta), ssl::ops::trans(tb), s.M, s.N, s.K, alpha, A.data(), lda,
                         B.data(), ldb, beta, C.data(), ldc);
          INFO("M " << s.M << " N " << s.N << " K " << s.K << " ta " << ta << " tb " << tb << " beta " << beta);
          int64_t bad = 0;
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const size_t e = size_t(i * ldc + j);
              if (j >= s.N) {  // the padding between rows of C is never written
                bad += !(std::isnan(C[e]) ? std::isnan(C0[e]) : C[e] == C0[e]);
                continue;
              }
              bad += !(std::abs(C[e] - ref[e]) <= 1e-5 * bound[e] + 1e-6);
            }
          REQUIRE(bad == 0);
        }
}

TEST_CASE("gemm: the result does not depend on the thread count") {
  ssl::rng g(5);
  const int64_t M = 300, N = 700, K = 600;
  std::vector<float> A(size_t(M * K)), B(size_t(N * K));
  for (auto& x : A) x = g.normal();
  for (auto& x : B) x = g.normal();
  auto run = [&](int threads) {
    ssl::set_num_threads(threads);
    std::vector<float> C(size_t(M * N));
    ssl::ops::gemm(ssl::cpu{}, ssl::ops::trans::no, ssl::ops::trans::yes, M, N, K, 1.0f, A.data(), K, B.data(), K,
                   0.0f, C.data(), N);
    return C;
  };
  const auto one = run(1), two = run(2);
  ssl::set_num_threads(2);
  CHECK(one == two);
}
