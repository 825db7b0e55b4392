// MSN: every gradient of a training step against finite differences (encoder, head; the prototypes'
// gradient is the loss's, tested in tests/losses/msn_test.cpp: finite differences of a whole step
// would also move the targets, which MSN computes without gradient), the loss rebuilt from the
// public parts, anchor masks (reproducible, kept counts), the EMA target network and its schedule,
// checkpoint names, learning, bad input.
#include <catch2/catch.hpp>
#include <ssl/methods/msn.hpp>

#include "method_support.hpp"

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
using tiny_msn = ssl::msn<ssl::vit<>>;
ssl::vit_options tiny_vit() {
  // 8x8 images, patch 2 -> a 4 x 4 grid (4x4 focal crops: 2 x 2), dim 8
  return {.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 2, .heads = 2, .mlp_ratio = 2.0f};
}
ssl::msn_options tiny_options() {
  ssl::msn_options o{.mask_ratio = 0.3f, .prototypes = 12, .momentum_base = 0.9f, .momentum_final = 0.99f, .seed = 4};
  o.loss.temperature = 0.5f;  // softer than MSN's 0.1: finite differences in float stay accurate
  o.loss.sharpen_temperature = 0.5f;
  return o;
}
tiny_msn make_tiny(uint64_t seed = 1, ssl::msn_options o = tiny_options()) {
  return tiny_msn(ssl::vit<>(tiny_vit(), ssl::rng(seed)),
                  ssl::projection_mlp<>(ssl::msn_options::projector(8, 16, 6), ssl::rng(seed + 1)), o,
                  ssl::rng(seed + 2));
}
T images(int64_t n, int64_t side, uint64_t seed) {
  ssl::rng g(seed);
  T x(shape{n, 1, side, side});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  return x;
}
/// The target view and the anchor view (8x8), then `focal` 4x4 views, of n images.
std::vector<T> views(int64_t n, int focal, uint64_t seed) {
  std::vector<T> v{images(n, 8, seed), images(n, 8, seed + 1)};
  for (int f = 0; f < focal; ++f) v.push_back(images(n, 4, seed + 2 + uint64_t(f)));
  return v;
}
size_t count_params(tiny_msn& m) {
  ssl::param_list<> ps;
  m.collect(ps, "");
  return ps.size();
}
}  // namespace

static_assert(ssl::Method<tiny_msn>);

TEST_CASE("msn train_step gradients (encoder, projector with BN and GELU) match finite differences") {
  for (float entropy : {0.0f, 0.4f}) {
    INFO("entropy weight " << entropy);
    ssl::msn_options o = tiny_options();
    o.loss.entropy_weight = entropy;
    tiny_msn m = make_tiny(1, o);
    const std::vector<T> v = views(4, 2, 3);
    auto step = [&] {
      m.set_step_count(0);  // the same masks every time
      return m.train_step(v).loss;
    };
    // every parameter but the last, the prototypes (see the file comment)
    const size_t n = count_params(m) - 1;
    // eps 1e-3: the BNs over 12 anchor rows curve the loss enough that 2e-3 is off by O(eps^2) on [CLS];
    // atol 4e-3: the float loss then leaves ~1e-3 of noise on the smallest coordinates
    const auto r = method_test::check_step_gradients(m, step, n, {.eps = 1e-3, .atol = 4e-3, .max_checks = 4});
    INFO(r.report());
    CHECK(r.ok());
    CHECK(r.checked > 60);
    CHECK(m.prototypes().grad.vec().norm() > 0.0f);
  }
}

TEST_CASE("msn loss = msn_loss(head(pooled masked anchors), target network of view 0, prototypes)") {
  tiny_msn m = make_tiny(2);
  method_test::shake_parameters(m.teacher_encoder(), 0.05f);  // a target network apart from the student
  const std::vector<T> v = views(3, 2, 10);
  tiny_msn copy = m;
  const float loss = m.train_step(v).loss;

  // rebuilt by hand: anchors in view order (the 8x8 anchor, then both 4x4 focal views as one group)
  const T target = copy.target_embeddings(v[0]);
  const int64_t N = 3, F = 8;
  T feats(shape{3 * N, F});
  {
    const ssl::token_mask m0 = copy.mask_for_step(N, 1, 16, 0, 0);
    CHECK(m0.kept == 11);  // floor(16 * 0.7)
    auto o = copy.encoder().forward_tokens(v[1], &m0);
    const T f = ssl::vit<>::pool_tokens(o.y, ssl::vit_pool::cls);
    std::copy_n(f.data(), N * F, feats.data());
  }
  {
    const T focal = ssl::concat_batch<ssl::cpu>({&v[2], &v[3]});
    const ssl::token_mask m1 = copy.mask_for_step(N, 2, 4, 0, 1);
    CHECK(m1.kept == 2);  // floor(4 * 0.7)
    auto o = copy.encoder().forward_tokens(focal, &m1);
    const T f = ssl::vit<>::pool_tokens(o.y, ssl::vit_pool::cls);
    std::copy_n(f.data(), 2 * N * F, feats.data() + N * F);
  }
  const T a = copy.head().forward(feats).y;
  const auto r = copy.loss()(a, target, copy.prototypes().value);
  CHECK(loss == Approx(r.value).epsilon(1e-5));
  const auto terms = m.last_terms();
  CHECK(terms[0] == Approx(r.parts[0]).epsilon(1e-5));
  CHECK(terms[1] == Approx(r.parts[1]).epsilon(1e-5));
  CHECK(terms[1] >= 0.0f);
  CHECK(terms[2] == Approx(r.parts[2]).epsilon(1e-5));
  CHECK(loss == Approx(terms[0] + terms[1]).epsilon(1e-5));  // ME-MAX weight 1, entropy weight 0
}

TEST_CASE("msn anchor masks are reproducible per (seed, step, group) and keep floor(L (1 - ratio)) patches") {
  const tiny_msn m = make_tiny();
  const auto a = m.mask_for_step(5, 1, 16, 3, 0), b = m.mask_for_step(5, 1, 16, 3, 0);
  CHECK(a.keep == b.keep);
  CHECK(a.kept == 11);
  CHECK(m.mask_for_step(5, 1, 16, 4, 0).keep != a.keep);
  CHECK(m.mask_for_step(5, 1, 16, 3, 1).keep != a.keep);
  ssl::msn_options other = tiny_options();
  other.seed = 5;
  CHECK(make_tiny(1, other).mask_for_step(5, 1, 16, 3, 0).keep != a.keep);
  // images draw their own kept patches
  bool differ = false;
  for (int64_t n = 1; n < 5; ++n)
    differ |= !std::equal(a.keep.begin(), a.keep.begin() + 11, a.keep.begin() + n * 11);
  CHECK(differ);
  // the same step draws the same masks: two identical models take identical steps
  tiny_msn x = make_tiny(3), y = make_tiny(3);
  const std::vector<T> v = views(2, 1, 20);
  CHECK(x.train_step(v).loss == y.train_step(v).loss);
}

TEST_CASE("msn after_step: target network = m target + (1 - m) student, m linear from base to final") {
  tiny_msn m = make_tiny();
  ssl::param_list<> s, t;
  m.encoder().collect(s, "");
  m.teacher_encoder().collect(t, "");
  for (int64_t i = 0; i < s[0].p->value.numel(); ++i) s[0].p->value[i] += 1.0f;  // cls_token: student moves
  const float before = t[0].p->value[0], student = s[0].p->value[0];
  CHECK(m.momentum() == 0.9f);
  m.after_step({5, 10, 0});  // progress 0.5
  CHECK(m.momentum() == Approx(0.945f));
  CHECK(t[0].p->value[0] == Approx(0.945f * before + 0.055f * student));
  m.after_step({10, 10, 0});
  CHECK(m.momentum() == Approx(0.99f));
  CHECK(m.step_count() == 10);
  // the head's target copy moves too
  ssl::param_list<> hs, ht;
  m.head().collect(hs, "");
  m.teacher_head().collect(ht, "");
  hs[0].p->value[0] += 2.0f;
  const float hb = ht[0].p->value[0];
  m.after_step({10, 10, 0});
  CHECK(ht[0].p->value[0] == Approx(0.99f * hb + 0.01f * hs[0].p->value[0]));
}

TEST_CASE("msn lists encoder, head and prototypes; checkpoints the target network and BN statistics") {
  tiny_msn m = make_tiny();
  ssl::param_list<> ps;
  m.collect(ps, "msn");
  REQUIRE(ps.back().name == "msn.prototypes");
  CHECK(ps.back().p->value.shape() == shape{12, 6});
  bool encoder = false, head = false;
  for (const auto& p : ps) {
    encoder |= p.name == "msn.encoder.cls_token";
    head |= p.name == "msn.head.6.weight";  // Linear, BN, GELU, Linear, BN, GELU, Linear
  }
  CHECK(encoder);
  CHECK(head);
  ssl::methods_detail::buffer_list<> bs;
  m.collect_buffers(bs, "");
  std::vector<std::string> names;
  for (const auto& b : bs) names.push_back(b.first);
  for (const char* want : {"head.1.running_mean", "teacher.encoder.cls_token", "teacher.head.6.weight",
                           "teacher.head.4.running_var"}) {
    INFO(want);
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
  }
  // the prototypes start U(-1/sqrt(d), 1/sqrt(d))
  const float bound = 1.0f / std::sqrt(6.0f);
  CHECK(m.prototypes().value.vec().cwiseAbs().maxCoeff() <= bound);
  CHECK(m.prototypes().value.vec().cwiseAbs().maxCoeff() > 0.5f * bound);
}

TEST_CASE("msn learns: SGD lowers the loss on fixed views") {
  tiny_msn m = make_tiny(5);
  const std::vector<T> v = views(6, 2, 30);
  const auto [first, last] = method_test::train_a_little(m, [&] { return m.train_step(v).loss; }, 40, 0.05f);
  INFO("first " << first << " last " << last);
  CHECK(last < 0.9f * first);  // the cross-entropy cannot reach 0: the targets are soft (Sinkhorn-balanced)
}

TEST_CASE("msn rejects bad views and options with typed errors") {
  tiny_msn m = make_tiny();
  CHECK_THROWS_AS(m.train_step({images(2, 8, 1)}), ssl::value_error);
  method_test::expect_shape_error_naming([&] { m.train_step({images(2, 8, 1), images(3, 8, 2)}); },
                                         {"view 1", "(2, C, h, w)", "(3, 1, 8, 8)"});
  method_test::expect_shape_error_naming([&] { m.train_step({images(2, 8, 1), images(2, 7, 2)}); },
                                         {"multiples of the patch size 2"});
  auto with = [](auto f) {
    ssl::msn_options o = tiny_options();
    f(o);
    return o;
  };
  CHECK_THROWS_AS(make_tiny(1, with([](auto& o) { o.mask_ratio = 1.0f; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(1, with([](auto& o) { o.prototypes = 0; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(1, with([](auto& o) { o.momentum_final = 1.5f; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(1, with([](auto& o) { o.loss.temperature = 0.0f; })), ssl::value_error);
  method_test::expect_shape_error_naming(
      [] {
        tiny_msn(ssl::vit<>(tiny_vit()), ssl::projection_mlp<>(ssl::msn_options::projector(9, 16, 6)));
      },
      {"features of size 8", "in_dim 9"});
}
