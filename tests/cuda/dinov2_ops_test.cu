// DINOv2's additions on the device against their CPU references: the teacher targets
// (losses_detail::centered_softmax / update_center, sinkhorn_knopp), iBOT's patch loss
// (ibot_patch), dino::with_targets, the mask-token ops (ops::mask_tokens and its backward) and
// vit<cuda> with a mask token (forward_tokens / backward_tokens with a patch_mask).
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include <ssl/backend/cuda/tokens.cuh>
#include <ssl/encoders/vit.hpp>
#include <ssl/losses/dino.hpp>
#include <ssl/losses/ibot_patch.hpp>
#include <ssl/losses/sinkhorn_knopp.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
/// The what() of the exception f throws (empty if none).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

/// |cuda - cpu| <= tol |cpu| for a (1) device loss.
void expect_close_value(const tensor<cuda>& dev_value, float value, float tol = 1e-4f) {
  const float v = to_host_scalar(dev_value);
  INFO("cpu " << value << ", cuda " << v);
  CHECK(std::abs(v - value) <= tol * std::abs(value));
}

/// Host flags (batch x tokens), about `ratio` of them set, drawn from seed.
std::vector<uint8_t> random_flags(int64_t n, uint64_t seed, float ratio) {
  rng g(seed);
  std::vector<uint8_t> h(static_cast<size_t>(n));
  for (auto& f : h) f = g.uniform(0.0f, 1.0f) < ratio ? 1 : 0;
  return h;
}
}  // namespace

TEST_CASE("cuda: centered_softmax and update_center match the CPU teacher targets") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t K = 300;
  const tensor<cpu> t = random(shape{2, 5, K}, 1, -3.0f, 3.0f);
  tensor<cpu> center = random(shape{K}, 2, -0.5f, 0.5f);
  tensor<cuda> dev_center = to_device(center);
  const tensor<cuda> p = losses_detail::centered_softmax(to_device(t), dev_center, 0.04f);
  CHECK(p.shape() == t.shape());
  CHECK(rel_diff(p, losses_detail::centered_softmax(t, center, 0.04f)) < 1e-5);
  // no rows: an empty result on both
  const tensor<cpu> none(shape{0, K});
  CHECK(losses_detail::centered_softmax(to_device(none), dev_center, 0.04f).shape() == none.shape());
  CHECK_THROWS_AS(losses_detail::centered_softmax(to_device(t), to_device(tensor<cpu>(shape{K - 1}, 0.0f)), 0.04f),
                  shape_error);
  CHECK_THROWS_AS(losses_detail::centered_softmax(to_device(t), dev_center, 0.0f), value_error);

  losses_detail::update_center(center, t, 0.9f);
  losses_detail::update_center(dev_center, to_device(t), 0.9f);
  CHECK(rel_diff(dev_center, center) < 1e-5);
  CHECK_THROWS_AS(losses_detail::update_center(dev_center, to_device(none), 0.9f), shape_error);
}

TEST_CASE("cuda: sinkhorn_knopp matches the CPU (K = 4096, R = 300; rows sum to 1; zero rows; errors)") {
  SSL_REQUIRE_CUDA_DEVICE();
  SECTION("DINOv2-sized teacher batch, several iteration counts") {
    const tensor<cpu> t = random(shape{2, 150, 4096}, 3, -3.0f, 3.0f);  // R = 300 rows of K = 4096
    for (int iterations : {1, 3, 5}) {
      INFO("iterations " << iterations);
      const tensor<cpu> ref = sinkhorn_knopp(t, 0.05f, iterations);
      const tensor<cuda> q = sinkhorn_knopp(to_device(t), 0.05f, iterations);
      CHECK(q.shape() == t.shape());
      CHECK(rel_diff(q, ref) < 1e-4);
      const tensor<cpu> h = to_host(q);
      double worst = 0;
      for (int64_t r = 0; r < 300; ++r) {
        double s = 0;
        for (int64_t k = 0; k < 4096; ++k) s += h[r * 4096 + k];
        worst = std::max(worst, std::abs(s - 1.0));
      }
      CHECK(worst < 1e-4);
    }
  }
  SECTION("a row whose mass underflows stays 0, as on the CPU; small K") {
    tensor<cpu> t = random(shape{37, 10}, 4, -1.0f, 1.0f);
    for (int64_t k = 0; k < 10; ++k) t[5 * 10 + k] = -1000.0f;  // exp(-20000): 0 in double and float
    const tensor<cpu> ref = sinkhorn_knopp(t, 0.05f);
    const tensor<cpu> h = to_host(sinkhorn_knopp(to_device(t), 0.05f));
    CHECK(rel_diff(to_device(h), ref) < 1e-4);
    for (int64_t k = 0; k < 10; ++k) CHECK(h[5 * 10 + k] == 0.0f);
  }
  SECTION("non-finite logits: numeric_error with the CPU's message; bad arguments") {
    tensor<cpu> t = random(shape{6, 50}, 5);
    t[123] = std::numeric_limits<float>::quiet_NaN();
    t[200] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(sinkhorn_knopp(to_device(t), 0.05f), numeric_error);
    const std::string cpu_msg = message_of([&] { (void)sinkhorn_knopp(t, 0.05f); });
    CHECK(!cpu_msg.empty());
    CHECK(message_of([&] { (void)sinkhorn_knopp(to_device(t), 0.05f); }) == cpu_msg);
    t[123] = 0.0f;
    CHECK_THROWS_AS(sinkhorn_knopp(to_device(t), 0.05f), numeric_error);  // the inf alone
    t[200] = 0.0f;
    CHECK_NOTHROW(sinkhorn_knopp(to_device(t), 0.05f));
    CHECK_THROWS_AS(sinkhorn_knopp(to_device(t), 0.0f), value_error);
    CHECK_THROWS_AS(sinkhorn_knopp(to_device(t), 0.05f, 0), value_error);
    CHECK_THROWS_AS(sinkhorn_knopp(to_device(tensor<cpu>(shape{0, 50})), 0.05f), shape_error);
    CHECK_THROWS_AS(sinkhorn_knopp(to_device(tensor<cpu>(shape{50})), 0.05f), shape_error);
  }
}

TEST_CASE("cuda: ibot_patch (teacher logits and ready targets, an image without hidden patches, M = 0) matches "
          "the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (int64_t K : {int64_t(256), int64_t(1000)}) {
    INFO("K " << K);
    const std::vector<int64_t> counts{3, 0, 5, 2};  // N = 4 images, M = 10 hidden patches
    const tensor<cpu> s = random(shape{10, K}, 6, -3.0f, 3.0f), t = random(shape{10, K}, 7, -3.0f, 3.0f);
    ibot_patch loss(K, 0.1f, 0.04f, 0.9f);
    loss.load_center(random(shape{K}, 8, -0.5f, 0.5f));
    const tensor<cuda> ds = to_device(s), dt = to_device(t);

    const ibot_patch_result ref = loss(s, t, counts);  // centred with the loss's center
    const auto r = loss(ds, dt, counts);
    expect_close_value(r.value, ref.value);
    CHECK(rel_diff(r.grad_student, ref.grad_student) < 1e-4);

    const tensor<cpu> targets = sinkhorn_knopp(t, 0.05f);  // ready targets
    const ibot_patch_result ref2 = loss.with_targets(s, targets, counts);
    const auto r2 = loss.with_targets(ds, to_device(targets), counts);
    expect_close_value(r2.value, ref2.value);
    CHECK(rel_diff(r2.grad_student, ref2.grad_student) < 1e-4);
    // the image without hidden patches still counts in N: the same loss with its 0 left out differs
    CHECK(std::abs(to_host_scalar(loss.with_targets(ds, to_device(targets), {3, 5, 2}).value) - ref2.value) >
          1e-3f * std::abs(ref2.value));

    // M = 0: loss 0, gradient (0, K)
    const tensor<cpu> empty(shape{0, K});
    const auto r0 = loss.with_targets(to_device(empty), to_device(empty), {0, 0});
    CHECK(to_host_scalar(r0.value) == 0.0f);
    CHECK(r0.grad_student.shape() == empty.shape());
    CHECK(loss.with_targets(empty, empty, {0, 0}).value == 0.0f);
    const auto r0l = loss(to_device(empty), to_device(empty), {0, 0});
    CHECK(to_host_scalar(r0l.value) == 0.0f);

    CHECK_THROWS_AS(loss.with_targets(ds, dt, {3, 5}), shape_error);  // counts add up to 8, not 10
    CHECK_THROWS_AS(loss.with_targets(ds, to_device(random(shape{9, K}, 9)), counts), shape_error);
    CHECK_THROWS_AS(loss(ds, to_device(random(shape{9, K}, 9)), counts), shape_error);
  }
}

TEST_CASE("cuda: dino::with_targets (ready teacher probabilities) matches the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t V = 6, G = 2, B = 3, K = 1000;
  const tensor<cpu> s = random(shape{V, B, K}, 11, -3.0f, 3.0f), t = random(shape{G, B, K}, 12, -3.0f, 3.0f);
  dino loss(K, 0.1f, 0.04f, 0.9f);
  loss.load_center(random(shape{K}, 13, -0.5f, 0.5f));
  for (bool sinkhorn : {false, true}) {
    INFO((sinkhorn ? "sinkhorn_knopp targets" : "centered softmax targets"));
    const tensor<cpu> targets = sinkhorn ? sinkhorn_knopp(t, 0.05f) : loss.teacher_probabilities(t);
    const dino_result ref = loss.with_targets(s, targets);
    const auto r = loss.with_targets(to_device(s), to_device(targets));
    expect_close_value(r.value, ref.value);
    CHECK(rel_diff(r.grad_student, ref.grad_student) < 1e-4);
  }
  // with_targets(centered_softmax(t)) on the device is the device operator()
  const tensor<cuda> center = to_device(loss.center());
  const auto a = loss(to_device(s), to_device(t), center);
  const auto b = loss.with_targets(to_device(s), losses_detail::centered_softmax(to_device(t), center, 0.04f));
  CHECK(to_host_scalar(a.value) == to_host_scalar(b.value));
  CHECK(rel_diff(a.grad_student, to_host(b.grad_student)) == 0.0);
  CHECK_THROWS_AS(loss.with_targets(to_device(s), to_device(random(shape{G, B + 1, K}, 14))), shape_error);
}

TEST_CASE("cuda: ops::mask_tokens and mask_tokens_backward match the CPU (dtoken accumulates)") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 3, L = 7, D = 16;
  const tensor<cpu> x = random(shape{N, L, D}, 20), token = random(shape{1, D}, 21), dy = random(shape{N, L, D}, 22);
  std::vector<uint8_t> hidden = random_flags(N * L, 23, 0.4f);
  hidden[0] = 1;
  hidden[1] = 0;
  const tensor<cpu> y = ops::mask_tokens(x, hidden, token);
  CHECK(rel_diff(ops::mask_tokens(to_device(x), hidden, to_device(token)), y) == 0.0);

  tensor<cpu> dtoken = random(shape{1, D}, 24);  // non-zero: the backward accumulates
  tensor<cuda> dev_dtoken = to_device(dtoken);
  const tensor<cpu> dx = ops::mask_tokens_backward(dy, hidden, dtoken);
  CHECK(rel_diff(ops::mask_tokens_backward(to_device(dy), hidden, dev_dtoken), dx) == 0.0);
  CHECK(rel_diff(dev_dtoken, dtoken) < 1e-6);

  // nothing hidden: the identity, dtoken unchanged
  const std::vector<uint8_t> none(size_t(N * L), 0);
  CHECK(rel_diff(ops::mask_tokens(to_device(x), none, to_device(token)), x) == 0.0);
  CHECK(rel_diff(ops::mask_tokens_backward(to_device(dy), none, dev_dtoken), dy) == 0.0);
  CHECK(rel_diff(dev_dtoken, dtoken) < 1e-6);

  CHECK_THROWS_AS(ops::mask_tokens(to_device(x), std::vector<uint8_t>(size_t(N * L - 1), 0), to_device(token)),
                  shape_error);
  CHECK_THROWS_AS(ops::mask_tokens(to_device(x), hidden, to_device(random(shape{1, D + 1}, 25))), shape_error);
}

TEST_CASE("cuda: vit<cuda> with a mask token (forward_tokens / backward_tokens with a patch_mask) matches vit<cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  const vit_options o{.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2,
                      .mask_token = true};
  vit<cpu> host(o, rng(3));
  vit<cuda> dev(o, rng(3));
  // a non-zero token (DINOv2 starts it at 0), the same on both
  host.mask_token().value = random(shape{1, 32}, 30, -0.5f, 0.5f);
  dev.mask_token().value = to_device(host.mask_token().value);
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);

  const int64_t N = 4, L = 49;
  patch_mask pm{.batch = N, .tokens = L, .hidden = random_flags(N * L, 31, 0.5f)};
  for (int64_t l = 0; l < L; ++l) pm.hidden[size_t(2 * L + l)] = 0;  // sample 2: nothing hidden
  REQUIRE(pm.hidden_count() > 0);
  const tensor<cpu> x = random(shape{N, 1, 28, 28}, 32, 0.0f, 1.0f);
  const tensor<cpu> dy = random(shape{N, 1 + L, 32}, 33);
  zero_gradients(ps);
  auto h = host.forward_tokens(x, nullptr, &pm);
  auto d = dev.forward_tokens(to_device(x), nullptr, &pm);
  CHECK(rel_diff(d.y, h.y) < 1e-4);
  const tensor<cpu> hdx = host.backward_tokens(h.saved, dy);
  const tensor<cuda> ddx = dev.backward_tokens(d.saved, to_device(dy));
  CHECK(rel_diff(ddx, hdx) < 2e-3);
  expect_close_gradients(ps);
  {
    INFO("mask_token gradient");
    double m = 0;
    for (int64_t i = 0; i < host.mask_token().grad.numel(); ++i) m = std::max(m, double(std::abs(host.mask_token().grad[i])));
    CHECK(m > 0);  // the hidden patches reach it
    CHECK(rel_diff(dev.mask_token().grad, host.mask_token().grad) < 2e-3);
  }
  // the hidden patches change the tokens: the same input without the mask differs
  CHECK(rel_diff(dev.forward_tokens(to_device(x)).y, h.y) > 1e-3);
}
