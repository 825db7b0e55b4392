// BYOL, SimSiam, MoCo v2 and MoCo v3 through the library's own classes on the GPU: each method
// built from convnet_s<cuda> + projection_mlp<cuda> (+ prediction_mlp<cuda>) with sgd<cuda> takes
// the same two training steps as its <cpu> instantiation from the same seeds: loss, gradients,
// parameters after the step, and after after_step the EMA teachers (weights and BN statistics),
// MoCo v2's queue and its write position (all listed by collect_buffers).
#include <algorithm>
#include <string>
#include <vector>

#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/byol.hpp>
#include <ssl/methods/moco.hpp>
#include <ssl/optim/sgd.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

namespace {
template <class B>
using byol_t = byol_method<convnet_s<B>, projection_mlp<B>, prediction_mlp<B>>;
template <class B>
using simsiam_t = simsiam_method<convnet_s<B>, projection_mlp<B>, prediction_mlp<B>>;
template <class B>
using moco_v2_t = moco_v2_method<convnet_s<B>, projection_mlp<B>>;
template <class B>
using moco_v3_t = moco_v3_method<convnet_s<B>, projection_mlp<B>, prediction_mlp<B>>;

static_assert(Method<byol_t<cuda>> && Method<simsiam_t<cuda>> && Method<moco_v2_t<cuda>> && Method<moco_v3_t<cuda>>);

// ConvNet-S features are 256-d; projections 64-d; predictors 64 -> 128 -> 64.
template <class B>
projection_mlp<B> projector(uint64_t seed) {
  return projection_mlp<B>({.in_dim = 256, .hidden_dim = 256, .out_dim = 64}, rng(seed).fork(1));
}
template <class B>
prediction_mlp<B> predictor(uint64_t seed) {
  return prediction_mlp<B>({.in_dim = 64, .hidden_dim = 128, .out_dim = 64}, rng(seed).fork(2));
}

template <class B>
byol_t<B> make_byol(uint64_t seed) {
  return byol_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed), predictor<B>(seed), {.tau_base = 0.9f});
}
template <class B>
simsiam_t<B> make_simsiam(uint64_t seed) {
  return simsiam_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed), predictor<B>(seed));
}
template <class B>
moco_v2_t<B> make_moco_v2(uint64_t seed) {  // 16 images per step: BN over 2 shuffled groups of 8
  return moco_v2_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed),
                      {.queue_size = 64, .momentum = 0.9f, .bn_groups = 2, .seed = 5});
}
template <class B>
moco_v3_t<B> make_moco_v3(uint64_t seed) {
  return moco_v3_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed), predictor<B>(seed), {.momentum_base = 0.9f},
                      moco_v3(0.5f));
}

double max_abs(const tensor<cpu>& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, double(std::abs(t[i])));
  return m;
}

const tensor<cpu>& grad_of(const param_list<cpu>& ps, const std::string& name) {
  for (const auto& r : ps)
    if (r.name == name) return r.p->grad;
  FAIL("no parameter " << name);
  return ps[0].p->grad;
}

// Every buffer (BN statistics, teacher weights and statistics, queue, counters) of both methods.
template <class MH, class MD>
void check_buffers(MH& host, MD& dev, double tolerance) {
  methods_detail::buffer_list<cpu> hb;
  methods_detail::buffer_list<cuda> db;
  host.collect_buffers(hb, "");
  dev.collect_buffers(db, "");
  REQUIRE(hb.size() == db.size());
  for (size_t i = 0; i < hb.size(); ++i) {
    INFO("buffer " << hb[i].first);
    CHECK(db[i].first == hb[i].first);
    CHECK(rel_diff(*db[i].second, *hb[i].second) <= tolerance);
  }
}

// Two SGD steps of both instantiations on the same views: the loss within 1e-4, every gradient
// within 2e-3 (the biases in bn_fed feed a BatchNorm, which removes any constant shift: their
// exact gradient is 0 and both backends hold rounding noise there, checked by size against the
// gradient of the same layer's weight), the parameters after opt.step() within 1e-4, then
// after_step (EMA teachers, queue) and every buffer within 1e-4.
template <class MH, class MD>
void check_two_steps(MH& host, MD& dev, int64_t batch, uint64_t seed, const std::vector<std::string>& bn_fed) {
  param_list<cpu> hp;
  param_list<cuda> dp;
  host.collect(hp, "");
  dev.collect(dp, "");
  REQUIRE(hp.size() == dp.size());
  for (size_t i = 0; i < hp.size(); ++i) {  // initialisers draw on the host: identical values
    INFO("parameter " << hp[i].name);
    REQUIRE(dp[i].name == hp[i].name);
    CHECK(rel_diff(dp[i].p->value, hp[i].p->value) == 0.0);
  }
  check_buffers(host, dev, 0.0);  // teachers are copies; MoCo's initial queue is drawn on the host
  const sgd_options o{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f};
  sgd host_opt(hp, o);
  sgd dev_opt(dp, o);
  static_assert(std::same_as<decltype(dev_opt), sgd<cuda>>);
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const std::vector<tensor<cpu>> views = {random(shape{batch, 1, 28, 28}, seed + 2 * step, 0.0f, 1.0f),
                                            random(shape{batch, 1, 28, 28}, seed + 2 * step + 1, 0.0f, 1.0f)};
    const std::vector<tensor<cuda>> dev_views = {to_device(views[0]), to_device(views[1])};
    host_opt.zero_grad();
    dev_opt.zero_grad();
    const float loss = host.train_step(views).loss;
    const float dev_loss = dev.train_step(dev_views).loss;
    INFO("loss: cpu " << loss << ", cuda " << dev_loss);
    CHECK(std::abs(dev_loss - loss) <= 1e-4f * std::abs(loss));
    for (size_t i = 0; i < hp.size(); ++i) {
      INFO("gradient of " << hp[i].name);
      const std::string& n = hp[i].name;
      if (std::find(bn_fed.begin(), bn_fed.end(), n) != bn_fed.end()) {
        const double w_scale = max_abs(grad_of(hp, n.substr(0, n.size() - 4) + "weight"));
        REQUIRE(w_scale > 0);
        CHECK(max_abs(hp[i].p->grad) < 1e-4 * w_scale);
        CHECK(max_abs(to_host(dp[i].p->grad)) < 1e-4 * w_scale);
      } else {
        CHECK(rel_diff(dp[i].p->grad, hp[i].p->grad) < 2e-3);
      }
    }
    host_opt.step();
    dev_opt.step();
    for (size_t i = 0; i < hp.size(); ++i) {
      INFO("value of " << hp[i].name);
      CHECK(rel_diff(dp[i].p->value, hp[i].p->value) < 1e-4);
    }
    const step_info info{step + 1, 10, 0};
    host.after_step(info);
    dev.after_step(info);
  }
  check_buffers(host, dev, 1e-4);
}
}  // namespace

TEST_CASE("cuda: byol_method<convnet_s<cuda>, projection_mlp<cuda>, prediction_mlp<cuda>> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_byol<cpu>(7);
  auto dev = make_byol<cuda>(7);
  check_two_steps(host, dev, 8, 400, {"projector.0.bias", "predictor.0.bias"});
  CHECK(dev.tau() == host.tau());
  CHECK(dev.target_encoder().bn(0).num_batches_tracked() == 2);
}

TEST_CASE("cuda: simsiam_method<convnet_s<cuda>, ...> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_simsiam<cpu>(8);
  auto dev = make_simsiam<cuda>(8);
  check_two_steps(host, dev, 8, 410, {"projector.0.bias", "predictor.0.bias"});
}

TEST_CASE("cuda: moco_v2_method<convnet_s<cuda>, projection_mlp<cuda>> steps like <cpu>, queue included") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_moco_v2<cpu>(9);
  auto dev = make_moco_v2<cuda>(9);
  check_two_steps(host, dev, 16, 420, {"head.0.bias"});
  CHECK(host.pointer() == 32);
  CHECK(dev.pointer() == 32);
  CHECK(rel_diff(dev.queue(), host.queue()) < 1e-4);
  CHECK(dev.key_permutation(16) == host.key_permutation(16));
  // the keys of a batch (shuffle-BN in 2 groups, unshuffled) as train_step computes them
  const tensor<cpu> x = random(shape{16, 1, 28, 28}, 430, 0.0f, 1.0f);
  CHECK(rel_diff(dev.compute_keys(to_device(x)), host.compute_keys(x)) < 1e-4);
  // the ring buffer wraps: 24 keys at 32 fill rows [32, 56), the next 24 rows [56, 64) and [0, 16)
  for (int64_t s = 0; s < 2; ++s) {
    const tensor<cpu> k = random(shape{24, 64}, 440 + uint64_t(s));
    host.enqueue(k);
    dev.enqueue(to_device(k));
  }
  CHECK(host.pointer() == 16);
  CHECK(dev.pointer() == 16);
  CHECK(rel_diff(dev.queue(), host.queue()) < 1e-5);
}

TEST_CASE("cuda: moco_v3_method<convnet_s<cuda>, projection_mlp<cuda>, prediction_mlp<cuda>> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_moco_v3<cpu>(10);
  auto dev = make_moco_v3<cuda>(10);
  check_two_steps(host, dev, 8, 450, {"projector.0.bias", "predictor.0.bias"});
  CHECK(dev.momentum() == host.momentum());
}
