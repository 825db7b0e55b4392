// DenseCL: every gradient of a training step against finite differences (mean and [CLS] pooling),
// the dense term against PyTorch (the official formulation), the matching on a hand-checked case,
// the loss rebuilt from its parts, both queues (FIFO, normalised, the dense queue holding the mean
// dense key), the EMA key network, determinism, checkpoint buffers, learning, typed errors.
#include <ssl/losses/densecl.hpp>
#include <ssl/methods/densecl.hpp>

#include "support/fixtures.hpp"
#include "method_support.hpp"

using namespace method_test;
using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
using tiny_densecl = ssl::densecl_method<ssl::vit<>, ssl::projection_mlp<>>;

// 8x8 images, patch 2 -> a 4 x 4 grid (S = 16), or patch 4 -> 2 x 2 (S = 4); D 16, depth 1, 2 heads;
// heads 16 -> 32 -> 8 (no BN, the DenseCL necks).
ssl::vit<> tiny_vit(ssl::vit_pool pool, uint64_t seed = 1, int64_t patch = 2) {
  return ssl::vit<>({.image_size = 8, .patch = patch, .in_channels = 1, .dim = 16, .depth = 1, .heads = 2,
                     .mlp_ratio = 2.0f, .pool = pool},
                    ssl::rng(seed));
}
ssl::projection_mlp<> neck(uint64_t seed, int64_t out = 8) {
  return ssl::projection_mlp<>({.in_dim = 16, .hidden_dim = 32, .out_dim = out, .layers = 2, .batch_norm = false},
                               ssl::rng(seed));
}
ssl::densecl_options tiny_options(int64_t queue = 12, float m = 0.9f) {
  return {.queue_size = queue, .momentum = m, .temperature = 0.2f, .loss_lambda = 0.5f, .seed = 4};
}
tiny_densecl make_tiny(ssl::vit_pool pool = ssl::vit_pool::mean, ssl::densecl_options o = tiny_options(),
                       uint64_t seed = 1, int64_t patch = 2) {
  return tiny_densecl(tiny_vit(pool, seed, patch), neck(seed + 10), neck(seed + 20), o);
}
/// The smallest margin, over all query locations, between the best and the second-best cosine of
/// the matching (query encoder on view 0, key encoder on view 1): a parameter step that moves the
/// cosines by less than this keeps every match.
double match_margin(tiny_densecl& m, const std::vector<T>& v) {
  const T qt = m.encoder().infer_tokens(v[0]), kt = m.key_encoder().infer_tokens(v[1]);
  const int64_t N = qt.dim(0), S = qt.dim(1) - 1, D = qt.dim(2);
  const T qn = ssl::losses_detail::normalize_rows(ssl::ops::slice_tokens(qt, 1, S), N * S).z;
  const T kn = ssl::losses_detail::normalize_rows(ssl::ops::slice_tokens(kt, 1, S), N * S).z;
  double margin = 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      std::vector<double> c;
      for (int64_t t = 0; t < S; ++t) {
        double d = 0;
        for (int64_t e = 0; e < D; ++e) d += double(qn[(n * S + s) * D + e]) * kn[(n * S + t) * D + e];
        c.push_back(d);
      }
      std::sort(c.rbegin(), c.rend());
      margin = std::min(margin, c[0] - c[1]);
    }
  return margin;
}
/// Moves the key network away from the query network, so the keys are not the queries' copies.
void separate_keys(tiny_densecl& m) {
  shake_parameters(m.key_encoder(), 0.05f);
  shake_parameters(m.key_head(), 0.05f);
  shake_parameters(m.key_dense_head(), 0.05f);
}
size_t count_params(tiny_densecl& m) {
  ssl::param_list<> ps;
  m.collect(ps, "");
  return ps.size();
}
T to_rows(const T& x) { return x.reshaped(shape{x.dim(0) * x.dim(1), x.dim(2)}); }
}  // namespace

static_assert(ssl::Method<tiny_densecl>);

// The matching is an argmax: piecewise constant in the parameters, so a finite difference is only
// the derivative where no match flips within +-eps. At initialisation a ViT's 16 tokens of 2x2
// patches lie close together (margins ~1e-3, finite differences jump there); 4x4 patches (S = 4)
// give margins of 0.05 and more, checked before the finite differences.
TEST_CASE("densecl: train_step gradients match finite differences (mean and [CLS] pooling, lambda 0.5 and 0.8)") {
  for (auto pool : {ssl::vit_pool::mean, ssl::vit_pool::cls}) {
    for (float lambda : {0.5f, 0.8f}) {
      INFO("pool " << (pool == ssl::vit_pool::mean ? "mean" : "cls") << ", lambda " << lambda);
      ssl::densecl_options o = tiny_options();
      o.loss_lambda = lambda;
      auto m = make_tiny(pool, o, 1, /*patch=*/4);
      shake_parameters(m.key_encoder(), 0.02f);  // keys from a network apart from the queries'
      shake_parameters(m.key_head(), 0.05f);
      shake_parameters(m.key_dense_head(), 0.05f);
      const auto views = two_views(4, 1, 8, 8, 31);
      REQUIRE(match_margin(m, views) > 0.02);
      const auto r = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params,
                                          {.eps = 1e-3, .atol = 3e-3, .max_checks = 6});
      INFO(r.report());
      CHECK(r.ok());
      CHECK(r.checked > 80);
      // both heads and the encoder's every part received gradient
      for (auto& p : ssl::parameters(m)) {  // [CLS] too with mean pooling: the patches attend to it
        INFO(p.name);
        CHECK(p.p->grad.vec().norm() > 0.0f);
      }
    }
  }
}

TEST_CASE("densecl dense term matches PyTorch (official formulation), value, gradient and matching") {
  const ssl_test::fixture f("losses/densecl.json");
  int cases = 0;
  // the case prefix "c<i>." (appended, not "c" + ...: GCC 12's -Wrestrict false positive)
  const auto prefix = [](int i) { return std::string("c").append(std::to_string(i)).append("."); };
  for (int i = 0; f.has(prefix(i) + "value"); ++i, ++cases) {
    const std::string c = prefix(i);
    INFO("case " << i);
    const T q = f.tensor(c + "q"), k = f.tensor(c + "k"), qb = f.tensor(c + "qb"), kb = f.tensor(c + "kb");
    const ssl::densecl_dense_loss loss(f.scalar(c + "tau"));
    const auto r = loss(q, k, qb, kb, f.tensor(c + "queue"));
    CHECK(r.value == Approx(f.scalar(c + "value")).epsilon(1e-5));
    CHECK(ssl_test::rel_error(r.grad_q, f.tensor(c + "grad_q")) < 1e-4);
    const std::vector<int64_t> m = ssl::densecl_match(qb, kb);
    const T want = f.tensor(c + "match");
    REQUIRE(int64_t(m.size()) == want.numel());
    for (int64_t j = 0; j < want.numel(); ++j) CHECK(m[size_t(j)] == int64_t(want[j]));
  }
  CHECK(cases == 3);
}

TEST_CASE("densecl matching: the key location of largest cosine of the same image, ties to the lowest") {
  // image 0, 3 locations, D 2. cosines of q0 = (1, 0): k0 0, k1 -0.995, k2 0.9994 -> 2;
  // q1 = (0, 1): k0 1 -> 0; q2 = (1, 1): k0 0.707, k1 -0.633, k2 0.730 -> 2.
  // image 1: key rows 0 and 2 equal (a tie) -> 0 for every query aligned with them; q = (0, -1) -> 1.
  const T qb = T::from(shape{2, 3, 2}, {1, 0, 0, 1, 1, 1, /**/ 2, 0, 0, -1, 5, 0.5f});
  const T kb = T::from(shape{2, 3, 2}, {0, 2, -1, 0.1f, 3, 0.1f, /**/ 1, 0, 0, -3, 1, 0});
  const std::vector<int64_t> m = ssl::densecl_match(qb, kb);
  CHECK(m == std::vector<int64_t>{2, 0, 2, 0, 1, 0});
  // the scale of a feature does not matter (cosines), and locations never match across images
  T qb2 = qb;
  for (int64_t i = 0; i < 6; ++i) qb2[i] *= 7.0f;
  CHECK(ssl::densecl_match(qb2, kb) == m);
  // matched keys: row n S + s = k[n, m[n S + s]]
  T k(shape{2, 3, 1});
  for (int64_t i = 0; i < 6; ++i) k[i] = float(10 * (i / 3) + (i % 3));  // image n location t -> 10 n + t
  std::vector<int64_t> got;
  const T pos = ssl::densecl_matched_keys(qb, kb, k, &got);
  CHECK(got == m);
  CHECK(pos.shape() == shape{6, 1});
  const std::vector<float> want{2, 0, 2, 10, 11, 10};
  for (int64_t r = 0; r < 6; ++r) CHECK(pos[r] == want[size_t(r)]);
}

TEST_CASE("densecl loss = (1 - lambda) moco(global) + lambda dense(matched), rebuilt from the parts") {
  auto m = make_tiny(ssl::vit_pool::mean, tiny_options(12, 0.9f));
  separate_keys(m);
  const auto views = two_views(3, 1, 8, 8, 32);
  auto copy = m;
  const float loss = m.train_step(views).loss;

  // by hand, with the copy's networks: queries from view 0, keys from view 1
  const T qt = copy.encoder().infer_tokens(views[0]);  // (3, 17, 16)
  const T qb = ssl::ops::slice_tokens(qt, 1, 16);
  const T q = copy.head().infer(ssl::densecl_detail::mean_tokens(qb));
  const T qd = copy.dense_head().infer(to_rows(qb)).reshaped(shape{3, 16, 8});
  const T kt = copy.key_encoder().infer_tokens(views[1]);
  const T kb = ssl::ops::slice_tokens(kt, 1, 16);
  const T k = copy.key_head().infer(ssl::densecl_detail::mean_tokens(kb));
  const T kd = copy.key_dense_head().infer(to_rows(kb)).reshaped(shape{3, 16, 8});
  const float lg = ssl::moco(0.2f)(q, k, copy.queue()).value;
  // the dense term with explicit positives
  std::vector<int64_t> match = ssl::densecl_match(qb, kb);
  T pos(shape{48, 8});
  for (int64_t r = 0; r < 48; ++r) std::copy_n(kd.data() + ((r / 16) * 16 + match[size_t(r)]) * 8, 8, pos.data() + r * 8);
  const float ld = ssl::moco(0.2f)(to_rows(qd), pos, copy.dense_queue()).value;
  CHECK(m.last_global_loss() == Approx(lg).epsilon(1e-5));
  CHECK(m.last_dense_loss() == Approx(ld).epsilon(1e-5));
  CHECK(loss == Approx(0.5f * lg + 0.5f * ld).epsilon(1e-5));
  CHECK(copy.match(views[0], views[1]) == match);
  // the matching is not the identity (the views differ): it matters
  int moved = 0;
  for (int64_t r = 0; r < 48; ++r) moved += match[size_t(r)] != r % 16;
  CHECK(moved > 0);
  // and the dense term with the identity correspondence instead differs
  const float ld_identity = ssl::moco(0.2f)(to_rows(qd), to_rows(kd), copy.dense_queue()).value;
  CHECK(std::abs(ld_identity - ld) > 1e-4);

  // [CLS] pooling: the global head sees the [CLS] token
  auto mc = make_tiny(ssl::vit_pool::cls, tiny_options(12, 0.9f));
  auto cc = mc;
  mc.train_step(views);
  const T qc = cc.head().infer(ssl::vit<>::pool_tokens(cc.encoder().infer_tokens(views[0]), ssl::vit_pool::cls));
  const T kc = cc.key_head().infer(ssl::vit<>::pool_tokens(cc.key_encoder().infer_tokens(views[1]), ssl::vit_pool::cls));
  CHECK(mc.last_global_loss() == Approx(ssl::moco(0.2f)(qc, kc, cc.queue()).value).epsilon(1e-5));
}

TEST_CASE("densecl queues: global keys and mean dense keys enqueued after the step, FIFO, normalised, wrapping") {
  auto m = make_tiny(ssl::vit_pool::mean, tiny_options(10, 0.9f));
  CHECK(m.queue_size() == 10);
  CHECK(m.queue().shape() == shape{10, 8});
  CHECK(m.dense_queue().shape() == shape{10, 8});
  CHECK(m.pointer() == 0);
  CHECK(m.dense_pointer() == 0);
  CHECK(max_diff(m.queue(), m.dense_queue()) > 0.1);  // two different random initial queues
  const T q0 = m.queue(), d0 = m.dense_queue();
  const auto views = two_views(6, 1, 8, 8, 33);
  m.train_step(views);
  CHECK(max_diff(m.queue(), q0) == 0.0);  // nothing enqueued before after_step
  CHECK(max_diff(m.dense_queue(), d0) == 0.0);
  const auto keys = m.compute_keys(views[1]);  // the step's keys (the key network moves only in after_step)
  const T dense_mean = ssl::densecl_detail::mean_tokens(keys.dense);
  m.after_step({1, 10, 0});
  CHECK(m.pointer() == 6);
  CHECK(m.dense_pointer() == 6);
  auto expect_rows = [](const T& queue, const T& rows, int64_t first) {
    const int64_t C = rows.dim(1);
    for (int64_t b = 0; b < rows.dim(0); ++b) {
      double nrm = 0;
      for (int64_t c = 0; c < C; ++c) nrm += double(rows[b * C + c]) * rows[b * C + c];
      for (int64_t c = 0; c < C; ++c)
        CHECK(queue[((first + b) % queue.dim(0)) * C + c] == Approx(rows[b * C + c] / std::sqrt(nrm)).margin(1e-5));
    }
  };
  expect_rows(m.queue(), keys.global, 0);
  expect_rows(m.dense_queue(), dense_mean, 0);
  for (int64_t i = 6 * 8; i < 10 * 8; ++i) {  // older rows untouched
    CHECK(m.queue()[i] == q0[i]);
    CHECK(m.dense_queue()[i] == d0[i]);
  }
  // the mean dense key by hand for image 0
  for (int64_t c = 0; c < 8; ++c) {
    double s = 0;
    for (int64_t t = 0; t < 16; ++t) s += keys.dense[t * 8 + c];
    CHECK(dense_mean[c] == Approx(s / 16).margin(1e-6));
  }
  // second step: rows 6..9 then wrap to 0..1
  const auto keys2 = m.compute_keys(views[0]);
  m.train_step({views[1], views[0]});
  m.after_step({2, 10, 0});
  CHECK(m.pointer() == 2);
  CHECK(m.dense_pointer() == 2);
  expect_rows(m.queue(), keys2.global, 6);
  expect_rows(m.dense_queue(), ssl::densecl_detail::mean_tokens(keys2.dense), 6);
  // checkpoint buffers: both queues, both pointers, the key network
  ssl::methods_detail::buffer_list<> b;
  m.collect_buffers(b, "");
  bool queue = false, ptr = false, dqueue = false, dptr = false, key = false, khead = false, kdense = false;
  for (auto& [name, t] : b) {
    queue |= name == "queue" && t->shape() == shape{10, 8};
    ptr |= name == "queue_ptr" && (*t)[0] == 2.0f;
    dqueue |= name == "dense_queue" && t->shape() == shape{10, 8};
    dptr |= name == "dense_queue_ptr" && (*t)[0] == 2.0f;
    key |= name == "key_encoder.cls_token";
    khead |= name == "key_head.0.weight";
    kdense |= name == "key_dense_head.2.weight";
  }
  CHECK(queue);
  CHECK(ptr);
  CHECK(dqueue);
  CHECK(dptr);
  CHECK(key);
  CHECK(khead);
  CHECK(kdense);
  // a direct enqueue of more rows than fit before the end wraps too
  m.enqueue(T(shape{9, 8}, 1.0f), T(shape{9, 8}, -1.0f));
  CHECK(m.pointer() == 1);
  CHECK(m.dense_queue()[0] == Approx(-1.0 / std::sqrt(8.0)));
}

TEST_CASE("densecl: the key network (encoder and both heads) is an EMA of the query network with momentum m") {
  auto m = make_tiny(ssl::vit_pool::mean, tiny_options(12, 0.9f));
  for (auto [q, k] : {std::pair{ssl::parameters(m.encoder()), ssl::parameters(m.key_encoder())},
                      std::pair{ssl::parameters(m.head()), ssl::parameters(m.key_head())},
                      std::pair{ssl::parameters(m.dense_head()), ssl::parameters(m.key_dense_head())}}) {
    REQUIRE(q.size() == k.size());
    for (size_t i = 0; i < q.size(); ++i) CHECK(max_diff(q[i].p->value, k[i].p->value) == 0.0);
    for (auto& r : q)
      for (int64_t j = 0; j < r.p->value.numel(); ++j) r.p->value[j] += 1.0f;
  }
  m.after_step({1, 10, 0});
  for (auto [q, k] : {std::pair{ssl::parameters(m.encoder()), ssl::parameters(m.key_encoder())},
                      std::pair{ssl::parameters(m.head()), ssl::parameters(m.key_head())},
                      std::pair{ssl::parameters(m.dense_head()), ssl::parameters(m.key_dense_head())}})
    for (size_t i = 0; i < q.size(); ++i)
      for (int64_t j = 0; j < q[i].p->value.numel(); j += 3) {
        INFO(q[i].name);
        CHECK(k[i].p->value[j] == Approx(q[i].p->value[j] - 0.9f).margin(1e-5));
      }
  // only the query network is trained: the key network is no parameter of the method
  for (auto& r : ssl::parameters(m)) CHECK(r.name.rfind("key_", 0) != 0);
  CHECK(count_params(m) == ssl::parameters(m.encoder()).size() + 8);  // + 2 linears of 2 heads
}

TEST_CASE("densecl: deterministic (same seed, same losses), and a few steps lower the loss") {
  auto run = [](int steps) {
    auto m = make_tiny(ssl::vit_pool::mean, tiny_options(64, 0.9f));
    ssl::param_list<> ps;
    m.collect(ps, "");
    ssl::sgd opt(ps, {.lr = 0.05f, .momentum = 0.9f});
    std::vector<float> losses;
    for (int s = 0; s < steps; ++s) {
      for (auto& r : ps) r.p->grad.zero();
      losses.push_back(m.train_step(two_views(8, 1, 8, 8, 600 + 7 * uint64_t(s))).loss);
      opt.step();
      m.after_step({s + 1, steps, 0});
    }
    return losses;
  };
  const auto a = run(3), b = run(3);
  CHECK(a == b);
  CHECK(a[0] != a[1]);
  // repeated train_step calls without after_step give the same loss
  auto m = make_tiny();
  const auto views = two_views(4, 1, 8, 8, 34);
  const float l0 = m.train_step(views).loss;
  CHECK(m.train_step(views).loss == l0);
  // learning: new images every step. The first steps replace the random initial queues by keys of a
  // ViT whose embeddings all lie close together: hard negatives, the loss rises; 10 warm-up steps,
  // then 150 steps must bring it down.
  auto learner = make_tiny(ssl::vit_pool::mean, tiny_options(32, 0.9f));
  uint64_t batch = 0;
  auto step = [&] { return learner.train_step(two_views(16, 1, 8, 8, 900 + 7 * batch++)).loss; };
  train_a_little(learner, step, 10, 0.02f);
  auto [first, last] = train_a_little(learner, step, 150, 0.02f);
  INFO("densecl " << first << " -> " << last);
  CHECK(last < first - 0.2f);
}

TEST_CASE("densecl: defaults are the official ones (queue 65536, m 0.999, T 0.2, lambda 0.5)") {
  const ssl::densecl_options o;
  CHECK(o.queue_size == 65536);
  CHECK(o.momentum == 0.999f);
  CHECK(o.temperature == 0.2f);
  CHECK(o.loss_lambda == 0.5f);
}

TEST_CASE("densecl: bad compositions, views and options throw typed errors naming what was expected and found") {
  // heads that do not fit the encoder's 16-d tokens
  auto bad_head = ssl::projection_mlp<>({.in_dim = 24, .hidden_dim = 32, .out_dim = 8, .batch_norm = false});
  expect_shape_error_naming([&] { tiny_densecl(tiny_vit(ssl::vit_pool::mean), bad_head, neck(2)); },
                            {"16", "24", "global head"});
  expect_shape_error_naming([&] { tiny_densecl(tiny_vit(ssl::vit_pool::mean), neck(2), bad_head); },
                            {"16", "24", "dense head"});
  auto m = make_tiny(ssl::vit_pool::mean, tiny_options(4));
  // a batch larger than the queue
  expect_shape_error_naming([&] { m.train_step(two_views(6, 1, 8, 8, 35)); }, {"6", "4", "queue"});
  // one view, or views of different shapes
  CHECK_THROWS_AS(m.train_step({random_batch(2, 1, 8, 8, 1)}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(2, 1, 8, 8, 1), random_batch(2, 1, 12, 12, 2)}); },
                            {"view 1", "(2, 1, 12, 12)"});
  // images the ViT cannot cut into patches
  CHECK_THROWS_AS(m.train_step({random_batch(2, 1, 7, 7, 1), random_batch(2, 1, 7, 7, 2)}), ssl::shape_error);
  // options
  auto with = [](auto f) {
    ssl::densecl_options o = tiny_options();
    f(o);
    return o;
  };
  CHECK_THROWS_AS(make_tiny(ssl::vit_pool::mean, with([](auto& o) { o.queue_size = 0; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(ssl::vit_pool::mean, with([](auto& o) { o.momentum = 1.5f; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(ssl::vit_pool::mean, with([](auto& o) { o.temperature = 0.0f; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(ssl::vit_pool::mean, with([](auto& o) { o.loss_lambda = -0.1f; })), ssl::value_error);
  CHECK_THROWS_AS(make_tiny(ssl::vit_pool::mean, with([](auto& o) { o.loss_lambda = 1.1f; })), ssl::value_error);
  // the loss and the matching check their inputs
  const ssl::densecl_dense_loss loss;
  expect_shape_error_naming([&] { ssl::densecl_match(T(shape{2, 4, 3}), T(shape{2, 5, 3})); },
                            {"(2, 4, 3)", "(2, 5, 3)"});
  expect_shape_error_naming(
      [&] { loss(T(shape{2, 4, 8}), T(shape{2, 4, 8}), T(shape{2, 4, 3}), T(shape{2, 4, 3}), T(shape{10, 6})); },
      {"(K, 8)", "(10, 6)"});
  expect_shape_error_naming(
      [&] { loss(T(shape{2, 4, 8}), T(shape{2, 3, 8}), T(shape{2, 4, 3}), T(shape{2, 4, 3}), T(shape{10, 8})); },
      {"(2, 4, 8)", "(2, 3, 8)"});
  // enqueue with keys of the wrong width
  expect_shape_error_naming([&] { m.enqueue(T(shape{2, 5}), T(shape{2, 8})); }, {"(B, 8)", "(2, 5)"});
  // data-parallel is refused, a single replica accepted
  CHECK_THROWS_AS(m.set_replica(0, 2), ssl::value_error);
  CHECK_NOTHROW(m.set_replica(0, 1));
}
