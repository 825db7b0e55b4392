#include "method_support.hpp"

using namespace method_test;

namespace {
auto make_v2(int64_t queue = 10, float m = 0.99f) {
  return ssl::moco_v2_method(tiny_encoder(64), tiny_head(16, 32, 8), {.queue_size = queue, .momentum = m, .seed = 4});
}
auto make_v3() { return ssl::moco_v3_method(tiny_encoder(64), tiny_head(16, 32, 8), tiny_head(8, 16, 8, 7)); }
}  // namespace

TEST_CASE("moco v2: train_step gradients match finite differences of its loss") {
  auto m = make_v2();
  const auto views = two_views(6, 1, 8, 8, 21);
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 6);
  INFO(res.report());
  CHECK(res.ok());
}

TEST_CASE("moco v2: keys are enqueued after the step, FIFO, wrapping around the queue") {
  auto m = make_v2(10);
  CHECK(m.queue_size() == 10);
  CHECK(m.pointer() == 0);
  const auto q0 = m.queue();
  const auto views = two_views(6, 1, 8, 8, 22);
  m.train_step(views);
  CHECK(max_diff(m.queue(), q0) == 0.0);  // nothing enqueued before after_step
  const auto keys = m.key_head().infer(m.key_encoder().infer(views[1]));
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
  ssl::methods_detail::buffer_list b;
  m.collect_buffers(b, "");
  bool queue = false, ptr = false, key = false;
  for (auto& [name, t] : b) {
    queue |= name == "queue" && t->shape() == ssl::shape{10, 8};
    ptr |= name == "queue_ptr" && (*t)[0] == 2.0f;
    key |= name == "key_encoder.layers.0.weight";
  }
  CHECK(queue);
  CHECK(ptr);
  CHECK(key);
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
    auto m = make_v2(64);
    auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
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
