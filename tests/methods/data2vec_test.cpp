// data2vec: every gradient of a training step against finite differences (with and without the
// regression head), the loss rebuilt from the public parts, the teacher's block outputs, the EMA
// teacher and its schedule, block masks (reproducible, counts), checkpoint buffers, learning, bad input.
#include <catch2/catch.hpp>
#include <ssl/methods/data2vec.hpp>

#include "method_support.hpp"

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
using tiny_data2vec = ssl::data2vec<ssl::vit<>>;
ssl::vit_options tiny_vit(int64_t depth = 2, int64_t registers = 0) {
  // 8x8 images, patch 2 -> a 4 x 4 grid, dim 8
  ssl::vit_options o{.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = depth, .heads = 2,
                     .mlp_ratio = 2.0f};
  o.mask_token = true;
  o.registers = registers;
  return o;
}
tiny_data2vec make_tiny(uint64_t seed = 1, ssl::data2vec_options o = {.seed = 9}) {
  return tiny_data2vec(ssl::vit<>(tiny_vit(), ssl::rng(seed)), o, ssl::rng(seed + 1));
}
T images(int64_t n, int64_t side, uint64_t seed) {
  ssl::rng g(seed);
  T x(shape{n, 1, side, side});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  return x;
}
/// Moves the teacher away from the student (noise on its weights) and gives the mask token a value.
void separate(tiny_data2vec& m) {
  ssl::param_list<> t;
  m.teacher().collect(t, "");
  ssl::rng g(11);
  for (auto& e : t)
    for (int64_t i = 0; i < e.p->value.numel(); ++i) e.p->value[i] += g.normal(0.0f, 0.05f);
  for (int64_t i = 0; i < 8; ++i) m.encoder().mask_token().value[i] = g.normal(0.0f, 0.3f);
}
/// LN over the last dim, no affine, eps 1e-5, in double.
std::vector<double> layer_normed(const float* v, int64_t D) {
  double mean = 0, var = 0;
  for (int64_t c = 0; c < D; ++c) mean += v[c] / double(D);
  for (int64_t c = 0; c < D; ++c) var += (v[c] - mean) * (v[c] - mean) / double(D);
  std::vector<double> out(static_cast<size_t>(D));
  for (int64_t c = 0; c < D; ++c) out[size_t(c)] = (v[c] - mean) / std::sqrt(var + 1e-5);
  return out;
}
/// Every gradient of a step (masks fixed: step count 0 each time) against finite differences.
void check_all_gradients(tiny_data2vec& m, const std::vector<T>& views, int min_checked) {
  auto step = [&] {
    m.set_step_count(0);
    return m.train_step(views).loss;
  };
  const auto r = method_test::check_step_gradients(m, step, method_test::all_params, {.eps = 2e-3, .max_checks = 4});
  INFO(r.report());
  CHECK(r.ok());
  CHECK(r.checked > min_checked);
}
}  // namespace

static_assert(ssl::Method<tiny_data2vec>);

TEST_CASE("data2vec train_step gradients (encoder, mask token, head) match finite differences") {
  tiny_data2vec m = make_tiny();
  separate(m);
  check_all_gradients(m, {images(3, 8, 3)}, 80);
  // the mask token got a gradient (its rows are the masked patches)
  CHECK(m.encoder().mask_token().grad.vec().norm() > 0.0f);
  // without the regression head (fairseq's vision model): the encoder output is regressed directly
  tiny_data2vec bare = make_tiny(2, {.regression_head = false, .seed = 9});
  separate(bare);
  ssl::param_list<> ps;
  bare.collect(ps, "");
  for (auto& p : ps) CHECK(p.name.rfind("head", 0) == std::string::npos);
  CHECK_THROWS_AS(bare.head(), ssl::value_error);
  check_all_gradients(bare, {images(3, 8, 4)}, 70);
}

TEST_CASE("data2vec loss = 1/sqrt(D) mean over masked tokens of smooth-L1(beta 2) vs LN(mean of the top K teacher blocks)") {
  tiny_data2vec m = make_tiny(3, {.top_k = 2, .seed = 5});
  separate(m);
  const T x = images(4, 8, 4);
  const ssl::patch_mask pm = m.masks_for_step(4, 4, 4, 0);
  // teacher block outputs, rebuilt with the blocks run one by one from the public parts
  const auto blocks = m.teacher().infer_block_outputs(x, 2);
  REQUIRE(blocks.size() == 2);
  // student tokens and head
  auto s = m.encoder().forward_tokens(x, nullptr, &pm);
  const int64_t D = 8, L = 16, Tk = 17;
  double total = 0;
  int64_t M = 0;
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t l = 0; l < L; ++l) {
      if (!pm.hidden[size_t(n * L + l)]) continue;
      ++M;
      const int64_t row = n * Tk + 1 + l;
      std::vector<float> avg(static_cast<size_t>(D));
      for (int64_t c = 0; c < D; ++c) avg[size_t(c)] = 0.5f * (blocks[0][row * D + c] + blocks[1][row * D + c]);
      const auto t = layer_normed(avg.data(), D);
      T z(shape{1, D});
      std::copy_n(s.y.data() + row * D, D, z.data());
      const T p = m.head().infer(z);
      for (int64_t c = 0; c < D; ++c) {
        const double e = std::abs(double(p[c]) - t[size_t(c)]);
        total += e < 2.0 ? 0.5 * e * e / 2.0 : e - 1.0;
      }
    }
  REQUIRE(M > 0);
  m.set_step_count(0);
  CHECK(m.train_step({x}).loss == Approx(total / std::sqrt(double(D)) / double(M)).epsilon(1e-4));
  // the teacher got no gradient and the step did not change it
  ssl::param_list<> t;
  m.teacher().collect(t, "");
  for (auto& e : t) CHECK(e.p->grad.vec().norm() == 0.0f);
  CHECK(m.top_k() == 2);
  CHECK(make_tiny().top_k() == 1);  // -1: half the depth of 2
}

TEST_CASE("vit::infer_block_outputs: the last K blocks before the final norm, registers dropped") {
  for (int64_t registers : {0, 2}) {
    INFO("registers " << registers);
    const ssl::vit<> v(tiny_vit(3, registers), ssl::rng(4));
    const T x = images(2, 8, 6);
    const auto outs = v.infer_block_outputs(x, 3);
    REQUIRE(outs.size() == 3);
    for (const auto& o : outs) CHECK(o.shape() == shape{2, 17, 8});
    // the last one, normed, is infer_tokens
    const T tokens = v.infer_tokens(x);
    const T normed = const_cast<ssl::vit<>&>(v).norm().infer(outs[2]);
    CHECK((normed.vec() - tokens.vec()).cwiseAbs().maxCoeff() < 1e-6f);
    // k = 1 gives the last block's output alone; successive blocks differ
    const auto last = v.infer_block_outputs(x, 1);
    REQUIRE(last.size() == 1);
    CHECK((last[0].vec() - outs[2].vec()).cwiseAbs().maxCoeff() == 0.0f);
    CHECK((outs[0].vec() - outs[1].vec()).cwiseAbs().maxCoeff() > 1e-3f);
    CHECK_THROWS_AS(v.infer_block_outputs(x, 4), ssl::value_error);
    CHECK_THROWS_AS(v.infer_block_outputs(x, 0), ssl::value_error);
  }
}

TEST_CASE("data2vec teacher: an EMA of the student, momentum linear from 0.999 to 0.9998; buffers list it") {
  tiny_data2vec m = make_tiny();
  separate(m);
  ssl::param_list<> enc, tch;
  m.encoder().collect(enc, "");
  m.teacher().collect(tch, "");
  const float e0 = enc[0].p->value[0], t0 = tch[0].p->value[0];
  REQUIRE(e0 != t0);
  CHECK(m.momentum() == 0.999f);
  m.after_step({.step = 50, .total_steps = 100});
  CHECK(m.momentum() == Approx(0.9994f).epsilon(1e-7));
  CHECK(tch[0].p->value[0] == Approx(0.9994f * t0 + 0.0006f * e0).epsilon(1e-6));
  m.after_step({.step = 200, .total_steps = 100});  // past the plan: stays at the final momentum
  CHECK(m.momentum() == 0.9998f);
  CHECK(m.step_count() == 200);
  ssl::methods_detail::buffer_list<> buffers;
  m.collect_buffers(buffers, "m");
  REQUIRE(buffers.size() == tch.size());
  CHECK(buffers[0].first == "m.teacher." + tch[0].name);
}

TEST_CASE("data2vec masks: blocks of about mask_ratio L patches, reproducible from (seed, step)") {
  const tiny_data2vec a = make_tiny(1, {.mask_ratio = 0.4f, .seed = 7}), b = make_tiny(2, {.mask_ratio = 0.4f, .seed = 7});
  int64_t global = 0;
  const auto m0 = a.masks_for_step(16, 4, 4, 0, &global);
  CHECK(m0.hidden == b.masks_for_step(16, 4, 4, 0).hidden);
  CHECK(m0.hidden != a.masks_for_step(16, 4, 4, 1).hidden);
  int64_t total = 0;
  for (int64_t n = 0; n < 16; ++n) {
    const int64_t h = m0.hidden_in(n);
    CHECK(h >= 1);
    CHECK(h <= 6);  // round(0.4 x 16): blocks never exceed the target
    total += h;
  }
  CHECK(global == total);
  CHECK(total >= 16 * 4);  // most images reach 6 (blocks of >= 4 patches; a few stop short)
  // a 7 x 7 grid (ViT-T/4 on 28 x 28): 20 of 49 patches
  const tiny_data2vec c = make_tiny(1, {.mask_ratio = 0.4f, .seed = 1});
  const auto m7 = c.masks_for_step(32, 7, 7, 3);
  int64_t h7 = 0;
  for (int64_t n = 0; n < 32; ++n) h7 += m7.hidden_in(n);
  CHECK(h7 <= 32 * 20);
  CHECK(h7 >= 32 * 16);
}

TEST_CASE("data2vec learns: the loss on a fixed batch falls under SGD") {
  tiny_data2vec m = make_tiny(2, {.momentum_base = 0.99f, .momentum_final = 0.99f, .seed = 9});
  const std::vector<T> views{images(8, 8, 6)};
  const auto [first, last] = method_test::train_a_little(m, [&] {
    m.set_step_count(0);  // the same masks: the batch's loss must fall
    return m.train_step(views).loss;
  }, 60, 0.05f);
  INFO("first " << first << ", last " << last);
  CHECK(last < 0.5f * first);
}

TEST_CASE("data2vec bad views and options throw typed errors naming what was expected") {
  tiny_data2vec m = make_tiny();
  const T x = images(2, 8, 6);
  CHECK_THROWS_AS(m.train_step({x, x}), ssl::value_error);
  CHECK_THROWS_AS(m.train_step({images(2, 9, 1)}), ssl::shape_error);
  ssl::vit_options plain = tiny_vit();
  plain.mask_token = false;
  CHECK_THROWS_WITH(tiny_data2vec(ssl::vit<>(plain, ssl::rng(1))), Catch::Contains("mask token"));
  CHECK_THROWS_WITH(tiny_data2vec(ssl::vit<>(tiny_vit(), ssl::rng(1)), {.top_k = 3}),
                    Catch::Contains("top_k") && Catch::Contains("got 3"));
  CHECK_THROWS_AS(tiny_data2vec(ssl::vit<>(tiny_vit(), ssl::rng(1)), {.mask_ratio = 1.0f}), ssl::value_error);
  CHECK_THROWS_AS(tiny_data2vec(ssl::vit<>(tiny_vit(), ssl::rng(1)), {.momentum_base = 1.5f}), ssl::value_error);
  CHECK_THROWS_AS(tiny_data2vec(ssl::vit<>(tiny_vit(), ssl::rng(1)), {.loss = {.beta = -1.0f}}), ssl::value_error);
}
