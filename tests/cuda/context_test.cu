// Device memory, transfers, error reporting and GEMM parity with the CPU gemm.
#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: device_available agrees with cudaGetDeviceCount") {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  (void)cudaGetLastError();
  CHECK(gpu::device_available() == ok);
  if (!ok) CHECK(gpu::device_name() == "no CUDA device");
}

TEST_CASE("cuda: host -> device -> host round trip, copies and pinned uploads") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> h = random(shape{3, 5, 7}, 1);
  tensor<cuda> d = to_device(h);
  CHECK(d.shape() == h.shape());
  tensor<cuda> copy = d;  // device-to-device copy
  ops::fill(d, 2.5f);     // must not touch the copy
  CHECK(rel_diff(copy, h) == 0.0);
  CHECK(to_host(d)[17] == 2.5f);
  tensor<cuda> up;
  copy_to_device(h, up);
  CHECK(rel_diff(up, h) == 0.0);
  const tensor<cpu> h2 = random(shape{3, 5, 7}, 2);
  copy_to_device(h2, up);  // the staging buffer is reused
  CHECK(rel_diff(up, h2) == 0.0);
  CHECK(to_host_scalar(up) == h2[0]);
  tensor<cuda> empty(shape{0, 4});
  CHECK(to_host(empty).numel() == 0);
}

TEST_CASE("cuda: CUDA errors become backend_error naming the call") {
  SSL_REQUIRE_CUDA_DEVICE();
  try {
    SSL_CUDA_CHECK(cudaMemcpy(nullptr, reinterpret_cast<void*>(16), 64, cudaMemcpyDeviceToDevice));
    FAIL("expected a backend_error");
  } catch (const backend_error& e) {
    const std::string m = e.what();
    CHECK(m.find("cudaMemcpy") != std::string::npos);
    CHECK(m.find("failed") != std::string::npos);
  }
  (void)cudaGetLastError();
}

TEST_CASE("cuda: gemm matches the CPU gemm for every transpose combination") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t M = 37, N = 53, K = 71;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const auto opa = ta ? ops::trans::yes : ops::trans::no, opb = tb ? ops::trans::yes : ops::trans::no;
      const tensor<cpu> A = random(ta ? shape{K, M} : shape{M, K}, 10 + ta);
      const tensor<cpu> B = random(tb ? shape{N, K} : shape{K, N}, 20 + tb);
      tensor<cpu> C = random(shape{M, N}, 30);
      tensor<cuda> dC = to_device(C);
      ops::gemm(cpu{}, opa, opb, M, N, K, 0.7f, A.data(), A.dim(1), B.data(), B.dim(1), 0.3f, C.data(), N);
      const tensor<cuda> dA = to_device(A), dB = to_device(B);
      ops::gemm(cuda{}, opa, opb, M, N, K, 0.7f, dA.data(), dA.dim(1), dB.data(), dB.dim(1), 0.3f, dC.data(), N);
      INFO("ta " << ta << " tb " << tb);
      CHECK(rel_diff(dC, C) < 1e-5);
    }
}

TEST_CASE("cuda: matmul checks shapes; TF32 is opt-in and close") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> A = random(shape{64, 128}, 3), B = random(shape{128, 32}, 4);
  tensor<cpu> C;
  ops::matmul(A, ops::trans::no, B, ops::trans::no, C);
  const tensor<cuda> dA = to_device(A), dB = to_device(B);
  tensor<cuda> dC;
  ops::matmul(dA, ops::trans::no, dB, ops::trans::no, dC);
  CHECK(rel_diff(dC, C) < 1e-5);
  gpu::set_tf32(true);
  CHECK(gpu::context::get().tf32());
  ops::matmul(dA, ops::trans::no, dB, ops::trans::no, dC);
  gpu::set_tf32(false);
  CHECK(rel_diff(dC, C) < 5e-3);  // TF32 keeps 10 mantissa bits
  CHECK_THROWS_AS(ops::matmul(dA, ops::trans::yes, dB, ops::trans::no, dC), shape_error);
}
