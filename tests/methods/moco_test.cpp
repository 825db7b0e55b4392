#include "method_support.hpp"

using namespace method_test;

namespace {
auto make_v2(int64_t queue = 10, float m = 0.99f, int64_t groups = 2,
             ssl::moco_key_bn key_bn = ssl::moco_key_bn::shuffled_groups) {
  return ssl::moco_v2_method(tiny_encoder(64), tiny_head(16, 32, 8),
                             {.queue_size = queue, .momentum = m, .key_bn = key_bn, .bn_groups = groups, .seed = 4});
}
auto make_v3() { return ssl::moco_v3_method(tiny_encoder(64), tiny_head(16, 32, 8), tiny_head(8, 16, 8, 7)); }
}  // namespace

TEST_CASE("moco v2: train_step gradients match finite differences of its loss (whole batch and BN groups)") {
  for (int64_t groups : {1, 2}) {
    auto m = make_v2(10, 0.99f, groups);
    const auto views = two_views(6, 1, 8, 8, 21);
    auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 6);
    INFO("bn_groups " << groups << "\n" << res.report());
    CHECK(res.ok());
  }
}

TEST_CASE("moco v2: keys are enqueued after the step, FIFO, wrapping around the queue") {
  auto m = make_v2(10);
  CHECK(m.queue_size() == 10);
  CHECK(m.pointer() == 0);
  const auto q0 = m.queue();
  const auto views = two_views(6, 1, 8, 8, 22);
  m.train_step(views);
  CHECK(max_diff(m.queue(), q0) == 0.0);  // nothing enqueued before after_step
  const auto keys = m.compute_keys(views[1]);  // the keys train_step used (same shuffle until after_step)
  m.after_step({1, 10, 0});
  CHECK(m.pointer() == 6);
  for (int64_t b = 0; b < 6; ++b) {
    double nrm = 0;
    for (int64_t d = 0; d < 8; ++d) nrm += double(keys[b * 8 + d]) * keys[b * 8 + d];
    for (int64_t d = 0; d < 8; ++d) CHECK(m.queue()[b * 8 + d] == Approx(keys[b * 8 + d] / std::sqrt(nrm)).margin(1e-5));
  }
  for (int64_t i = 6 * 8; i < 10 * 8; ++i) CHECK(m.queue()[i] == q0[i]);  // older rows untouched
  // second step: rows 6..9 then wrap to 0..1; pointer 2
  m.train_step(views);
  m.after_step({2, 10, 0});
  CHECK(m.pointer() == 2);
  CHECK(max_diff(m.queue(), q0) > 0.0);
  // the queue and its pointer are checkpoint buffers
  ssl::methods_detail::buffer_list<> b;
  m.collect_buffers(b, "");
  bool queue = false, ptr = false, key = false, shuffle = false;
  for (auto& [name, t] : b) {
    queue |= name == "queue" && t->shape() == ssl::shape{10, 8};
    ptr |= name == "queue_ptr" && (*t)[0] == 2.0f;
    key |= name == "key_encoder.layers.0.weight";
    shuffle |= name == "shuffle_step" && (*t)[0] == 2.0f;
  }
  CHECK(queue);
  CHECK(ptr);
  CHECK(key);
  CHECK(shuffle);
}

TEST_CASE("moco v2: the key network is an EMA of the query network with momentum m") {
  auto m = make_v2(10, 0.9f);
  auto qp = ssl::parameters(m.encoder());
  auto kp = ssl::parameters(m.key_encoder());
  for (size_t i = 0; i < qp.size(); ++i) CHECK(max_diff(qp[i].p->value, kp[i].p->value) == 0.0);
  for (int64_t k = 0; k < qp[0].p->value.numel(); ++k) qp[0].p->value[k] += 1.0f;
  m.after_step({1, 10, 0});
  for (int64_t k = 0; k < qp[0].p->value.numel(); k += 5)
    CHECK(kp[0].p->value[k] == Approx(qp[0].p->value[k] - 0.9f).margin(1e-5));
}

TEST_CASE("moco v3: gradients match finite differences; momentum follows a cosine to 1") {
  auto m = make_v3();
  const auto views = two_views(6, 1, 8, 8, 23);
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 8);
  INFO(res.report());
  CHECK(res.ok());
  m.after_step({5, 10, 0});
  CHECK(m.momentum() == Approx(1 - 0.01 * (std::cos(M_PI * 0.5) + 1) / 2).epsilon(1e-6));
  m.after_step({10, 10, 0});
  CHECK(m.momentum() == 1.0f);
}

TEST_CASE("moco: bad compositions throw shape_error naming both sizes") {
  expect_shape_error_naming([] { ssl::moco_v2_method(tiny_encoder(64, 16), tiny_head(24, 32, 8)); },
                            {"16", "24", "moco_v2"});
  expect_shape_error_naming(
      [] { ssl::moco_v3_method(tiny_encoder(64, 16), tiny_head(16, 32, 8), tiny_head(8, 16, 4)); }, {"4", "8"});
  auto m = make_v2(4);
  const auto views = two_views(6, 1, 8, 8, 24);
  expect_shape_error_naming([&] { m.train_step(views); }, {"6", "4", "queue"});
}

TEST_CASE("moco v2 and v3: a few steps lower the loss on a tiny problem") {
  const auto views = two_views(16, 1, 8, 8, 25);
  {
    // v2 sees new images every step (repeating a batch would fill the queue with copies of the
    // positives); 4 warm-up steps replace the random initial queue by real keys
    auto m = make_v2(64, 0.99f, 2);
    uint64_t batch = 0;
    auto step = [&] { return m.train_step(two_views(16, 1, 8, 8, 500 + 7 * batch++)).loss; };
    train_a_little(m, step, 4, 0.05f);
    auto [first, last] = train_a_little(m, step, 40, 0.05f);
    INFO("moco v2 " << first << " -> " << last);
    CHECK(last < first - 0.2f);
  }
  {
    auto m = make_v3();
    auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
    INFO("moco v3 " << first << " -> " << last);
    CHECK(last < first - 0.2f);
  }
}

TEST_CASE("moco v2: defaults suit short runs on small data (queue 4096, m 0.99, shuffle-BN over 8 groups)") {
  const ssl::moco_v2_options o;
  CHECK(o.queue_size == 4096);
  CHECK(o.momentum == 0.99f);
  CHECK(o.key_bn == ssl::moco_key_bn::shuffled_groups);
  CHECK(o.bn_groups == 8);
  auto m = ssl::moco_v2_method(tiny_encoder(64), tiny_head(16, 32, 8));
  CHECK(m.queue_size() == 4096);
  CHECK(m.loss().temperature() == 0.2f);
}

TEST_CASE("moco v2: keys use batch statistics of shuffled groups, not the running statistics") {
  auto m = make_v2(16, 0.99f, 2);
  const auto views = two_views(8, 1, 8, 8, 26);
  const auto perm = m.key_permutation(8);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 8; ++i) CHECK(sorted[size_t(i)] == i);
  const auto keys = m.compute_keys(views[1]);
  // group g holds the images perm[4g .. 4g + 3]; recompute each group with its own batch statistics
  auto key_net_copy = m;  // train-mode forwards touch running statistics only; use a copy anyway
  for (int64_t g = 0; g < 2; ++g) {
    std::vector<int64_t> members(perm.begin() + 4 * g, perm.begin() + 4 * g + 4);
    ssl::tensor<ssl::cpu> x(ssl::shape{4, 1, 8, 8});
    for (int64_t j = 0; j < 4; ++j) std::copy_n(views[1].data() + members[size_t(j)] * 64, 64, x.data() + j * 64);
    const auto k = key_net_copy.key_head().forward(key_net_copy.key_encoder().forward(x).y).y;
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t d = 0; d < 8; ++d)
        CHECK(keys[members[size_t(j)] * 8 + d] == Approx(k[j * 8 + d]).margin(1e-5));
  }
  // eval mode (running statistics 0 / 1 at initialisation) gives different keys
  const auto eval_keys = m.key_head().infer(m.key_encoder().infer(views[1]));
  CHECK(max_diff(keys, eval_keys) > 1e-2);
  // the whole-batch variant differs from the grouped one: the groups' statistics matter
  auto whole = make_v2(16, 0.99f, 2, ssl::moco_key_bn::batch);
  CHECK(max_diff(keys, whole.compute_keys(views[1])) > 1e-3);
  // a step draws a new shuffle; a repeated train_step without after_step does not
  m.train_step(views);
  CHECK(m.key_permutation(8) == perm);
  m.after_step({1, 10, 0});
  const auto next = m.key_permutation(8);
  CHECK(next != perm);
  // the shuffle is a function of (seed, step): a copy made now draws the same next shuffle
  auto twin = m;
  twin.after_step({2, 10, 0});
  m.after_step({2, 10, 0});
  CHECK(twin.key_permutation(8) == m.key_permutation(8));
}

TEST_CASE("moco v2: key_bn running keeps the former eval-mode keys with the query network's statistics") {
  auto m = make_v2(16, 0.99f, 1, ssl::moco_key_bn::running);
  const auto views = two_views(8, 1, 8, 8, 27);
  CHECK(max_diff(m.compute_keys(views[1]), m.key_head().infer(m.key_encoder().infer(views[1]))) == 0.0);
  m.train_step(views);  // updates the query head's running statistics
  m.after_step({1, 10, 0});
  ssl::methods_detail::buffer_list<> qb, kb;
  m.head().collect_buffers(qb, "");
  m.key_head().collect_buffers(kb, "");
  REQUIRE(!qb.empty());
  CHECK(max_diff(*qb[0].second, *kb[0].second) == 0.0);  // copied
}

TEST_CASE("moco v2: bad bn_groups throw, naming the batch and the groups") {
  auto m = make_v2(16, 0.99f, 4);
  const auto views = two_views(6, 1, 8, 8, 28);
  expect_shape_error_naming([&] { m.train_step(views); }, {"6", "bn_groups = 4"});
  CHECK_THROWS_AS(make_v2(16, 0.99f, 0), ssl::value_error);
}
