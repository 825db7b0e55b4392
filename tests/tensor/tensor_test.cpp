#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/tensor.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("tensor shape, access and value semantics") {
  T t(shape{2, 3, 4}, 1.5f);
  CHECK(t.numel() == 24);
  CHECK(t.dim(-1) == 4);
  t.at(1, 2, 3) = 7.0f;
  CHECK(t[23] == 7.0f);
  T u = t;  // deep copy
  u[0] = -1.0f;
  CHECK(t[0] == 1.5f);
  CHECK_THROWS_AS(t.at(2, 0, 0), ssl::shape_error);
  CHECK_THROWS_AS(t.reshape(shape{5, 5}), ssl::shape_error);
  t.reshape(shape{6, 4});
  CHECK(t.matrix().rows() == 6);
}

TEST_CASE("shape errors name the expected and actual shapes") {
  T t(shape{2, 3});
  try {
    ssl::expect_shape(t, shape{2, 4}, "linear input");
    FAIL("no throw");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("(2, 4)") != std::string::npos);
    CHECK(msg.find("(2, 3)") != std::string::npos);
    CHECK(msg.find("linear input") != std::string::npos);
  }
}

TEST_CASE("gemm matches a naive product for every transpose combination") {
  ssl::rng g(3);
  const int64_t M = 17, N = 9, K = 13;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      T A(ta ? shape{K, M} : shape{M, K}), B(tb ? shape{N, K} : shape{K, N}), C(shape{M, N}, 1.0f);
      for (int64_t i = 0; i < A.numel(); ++i) A[i] = g.normal();
      for (int64_t i = 0; i < B.numel(); ++i) B[i] = g.normal();
      ssl::ops::gemm(ssl::cpu{}, ssl::ops::trans(ta), ssl::ops::trans(tb), M, N, K, 0.5f, A.data(), A.dim(1), B.data(),
                     B.dim(1), 2.0f, C.data(), N);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += double(ta ? A.at(k, i) : A.at(i, k)) * (tb ? B.at(j, k) : B.at(k, j));
          REQUIRE(C.at(i, j) == Approx(0.5 * s + 2.0).margin(1e-4));
        }
    }
  T A(shape{3, 4}), B(shape{5, 2}), C;
  CHECK_THROWS_AS(ssl::ops::matmul(A, ssl::ops::trans::no, B, ssl::ops::trans::no, C), ssl::shape_error);
}
