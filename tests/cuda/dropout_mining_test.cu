// The device dropout mask (bit-identical to ops::dropout_mask) and triplet mining on the device
// against ssl::triplet_mining.
#include <cstring>
#include <ssl/backend/cpu/dropout.hpp>
#include <ssl/losses/triplet.hpp>
#include <tuple>
#include <vector>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;
using ssl_cuda_test::value_rel_diff;

namespace {

// Number of elements where a and b differ in any bit (0: bit-identical).
int64_t bit_mismatches(const tensor<cpu>& a, const tensor<cpu>& b) {
  REQUIRE(a.shape() == b.shape());
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) bad += std::memcmp(a.data() + i, b.data() + i, sizeof(float)) != 0;
  return bad;
}

int64_t device_count(const gpu::array<int64_t>& c) {
  int64_t v = -1;
  SSL_CUDA_CHECK(cudaMemcpyAsync(&v, c.data(), sizeof(int64_t), cudaMemcpyDeviceToHost, gpu::stream()));
  SSL_CUDA_CHECK(cudaStreamSynchronize(gpu::stream()));
  return v;
}

// Labels i % classes, plus one singleton class (an anchor without a positive) at the end.
std::vector<int64_t> class_labels(int64_t N, int64_t classes) {
  std::vector<int64_t> y(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) y[size_t(i)] = i % classes;
  y.back() = classes + 7;
  return y;
}

}  // namespace

TEST_CASE("cuda: dropout mask is bit-identical to the CPU mask; multiply applies it") {
  SSL_REQUIRE_CUDA_DEVICE();
  rng advanced(5, 9);
  advanced.set_counter(1000);  // the mask ignores the stream's running counter, as on the CPU
  const std::vector<rng> streams = {rng(7).fork(3), rng(123, 5), advanced};
  const std::vector<shape> shapes = {shape{1}, shape{4}, shape{7}, shape{3, 5}, shape{257, 129}, shape{2, 3, 64, 65}};
  for (const rng& stream : streams)
    for (const shape& s : shapes)
      for (const float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
        INFO("shape " << s << " p " << p << " key " << stream.key());
        const tensor<cpu> ref = ops::dropout_mask(s, p, stream);
        const tensor<cuda> got = ops::dropout_mask(cuda{}, s, p, stream);
        CHECK(bit_mismatches(to_host(got), ref) == 0);
        tensor<cuda> into(s);
        ops::dropout_mask(into, p, stream);
        CHECK(bit_mismatches(to_host(into), ref) == 0);
      }
  // A large mask has both values, and dropout's forward x * mask matches exactly.
  const shape s{33, 1001};
  const tensor<cpu> ref = ops::dropout_mask(s, 0.3f, streams[0]);
  const tensor<cuda> mask = ops::dropout_mask(cuda{}, s, 0.3f, streams[0]);
  const tensor<cpu> x = random(s, 40);
  CHECK(bit_mismatches(to_host(ops::multiply(to_device(x), mask)), ops::multiply(x, ref)) == 0);
  // Different streams give different masks (the key reaches the kernel).
  CHECK(bit_mismatches(to_host(ops::dropout_mask(cuda{}, s, 0.3f, streams[1])), ref) > 0);
}

TEST_CASE("cuda: triplet mining loss and gradient match ssl::triplet_mining") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 32, D = 16;
  const tensor<cpu> x = random(shape{N, D}, 120);
  for (const auto strategy : {triplet_strategy::batch_all, triplet_strategy::batch_hard, triplet_strategy::semi_hard})
    for (const auto distance : {triplet_distance::squared_euclidean, triplet_distance::cosine})
      for (const auto& [margin, classes] : {std::tuple{0.2f, int64_t(4)}, std::tuple{1.0f, int64_t(5)}}) {
        INFO("strategy " << int(strategy) << " cosine " << (distance == triplet_distance::cosine) << " margin "
                         << margin << " classes " << classes);
        const std::vector<int64_t> labels = class_labels(N, classes);
        const triplet_mining_result ref = triplet_mining(strategy, margin, distance)(x, labels);
        REQUIRE(ref.triplets > 0);  // a case that exercises the mining
        const ops::triplet_mining_device_result got = ops::triplet_mining_loss(to_device(x), labels, strategy, margin, distance);
        CHECK(device_count(got.triplets) == ref.triplets);
        CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
        CHECK(rel_diff(got.grad_x, ref.grad_x) < 1e-4);
      }
}

TEST_CASE("cuda: triplet mining without a valid triplet gives 0 and a zero gradient") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{6, 5}, 130);
  const std::vector<int64_t> same(6, 3), distinct = {0, 1, 2, 3, 4, 5};
  for (const auto strategy : {triplet_strategy::batch_all, triplet_strategy::batch_hard, triplet_strategy::semi_hard})
    for (const auto distance : {triplet_distance::squared_euclidean, triplet_distance::cosine})
      for (const auto* labels : {&same, &distinct}) {
        INFO("strategy " << int(strategy) << " cosine " << (distance == triplet_distance::cosine));
        const triplet_mining_result ref = triplet_mining(strategy, 1.0f, distance)(x, *labels);
        const ops::triplet_mining_device_result got = ops::triplet_mining_loss(to_device(x), *labels, strategy, 1.0f, distance);
        CHECK(device_count(got.triplets) == ref.triplets);
        CHECK(to_host_scalar(got.value) == 0.0f);
        const tensor<cpu> g = to_host(got.grad_x);
        for (int64_t i = 0; i < g.numel(); ++i) CHECK(g[i] == 0.0f);
      }
  // Every batch-hard term inactive (a margin of 0 and well separated classes): count > 0, value 0.
  tensor<cpu> sep = random(shape{8, 4}, 131, -0.01f, 0.01f);
  for (int64_t i = 4; i < 8; ++i) sep[i * 4] += 5.0f;
  const std::vector<int64_t> two = {0, 0, 0, 0, 1, 1, 1, 1};
  const triplet_mining_result ref = triplet_mining(triplet_strategy::batch_hard, 0.0f)(sep, two);
  const ops::triplet_mining_device_result got = ops::triplet_mining_loss(to_device(sep), two, triplet_strategy::batch_hard, 0.0f);
  CHECK(ref.triplets == 8);
  CHECK(device_count(got.triplets) == 8);
  CHECK(to_host_scalar(got.value) == ref.value);
  CHECK(rel_diff(got.grad_x, ref.grad_x) == 0.0);
}

TEST_CASE("cuda: dropout's Philox draw and mask formula equal the CPU's (host-evaluated, no device needed)") {
  // The device function is __host__ __device__: evaluated here on the host against core/rng.hpp.
  for (const uint64_t key : {uint64_t(0), uint64_t(0x0123456789ABCDEFull), rng(99).fork(4).key()})
    for (const uint64_t c : {uint64_t(0), uint64_t(1), uint64_t(12345), uint64_t(0xFFFFFFFFull), uint64_t(0x500000003ull)}) {
      INFO("key " << key << " counter " << c);
      const auto ref = philox4x32({uint32_t(c), uint32_t(c >> 32), 0u, 0u}, {uint32_t(key), uint32_t(key >> 32)});
      const gpu::kernels::philox_words got = gpu::kernels::philox_counter_draws(key, c);
      for (int k = 0; k < 4; ++k) CHECK(got.w[k] == ref[size_t(k)]);
    }
  // The per-element mask formula over a whole CPU mask (size not a multiple of 4).
  const rng stream = rng(21).fork(8);
  for (const float p : {0.0f, 0.25f, 0.5f, 1.0f}) {
    INFO("p " << p);
    const tensor<cpu> ref = ops::dropout_mask(shape{1031}, p, stream);
    const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    tensor<cpu> host(shape{1031});
    for (int64_t i = 0; i < host.numel(); ++i)
      host[i] = gpu::kernels::dropout_value(gpu::kernels::philox_counter_draws(stream.key(), uint64_t(i / 4)).w[i % 4],
                                            p, keep);
    CHECK(bit_mismatches(host, ref) == 0);
  }
  // The draws in order are rng::next_u32's.
  rng seq = rng(3).fork(11);
  for (uint64_t c = 0; c < 3; ++c) {
    const gpu::kernels::philox_words w = gpu::kernels::philox_counter_draws(seq.key(), c);
    for (int k = 0; k < 4; ++k) CHECK(w.w[k] == seq.next_u32());
  }
}

TEST_CASE("cuda: dropout / triplet mining reject bad arguments before any device work") {
  // Runs without a GPU: the checks come before any allocation or launch.
  const rng g(1);
  CHECK_THROWS_AS(ops::dropout_mask(cuda{}, shape{8}, -0.1f, g), value_error);
  CHECK_THROWS_AS(ops::dropout_mask(cuda{}, shape{8}, 1.5f, g), value_error);
  CHECK_THROWS_AS(ops::dropout_mask(cuda{}, shape{8}, std::nanf(""), g), value_error);
  CHECK_THROWS_WITH(ops::dropout_mask(cuda{}, shape{8}, 2.0f, g), Catch::Contains("expected p in [0, 1]"));
  tensor<cuda> none = empty_device(shape{0, 8});
  CHECK_THROWS_AS(ops::dropout_mask(none, 1.01f, g), value_error);
  CHECK_NOTHROW(ops::dropout_mask(none, 0.5f, g));  // nothing to draw

  const std::vector<int64_t> three = {0, 1, 0}, zero;
  CHECK_THROWS_AS(ops::triplet_mining_loss(none, zero, triplet_strategy::batch_hard, -1.0f), value_error);
  CHECK_THROWS_AS(ops::triplet_mining_loss(none, zero, triplet_strategy::batch_all, INFINITY), value_error);
  CHECK_THROWS_AS(ops::triplet_mining_loss(none, three), shape_error);
  CHECK_THROWS_WITH(ops::triplet_mining_loss(none, three), Catch::Contains("expected 0 labels, got 3"));
  CHECK_THROWS_AS(ops::triplet_mining_loss(none, zero), shape_error);  // empty embeddings
  CHECK_THROWS_AS(ops::triplet_mining_loss(empty_device(shape{0}), zero), shape_error);  // not (N, D)
}
