// nt_xent, info_nce, moco, moco_v3: PyTorch fixtures, gradient checks, bad input, the queue.
#include <ssl/losses/moco.hpp>
#include <ssl/losses/nt_xent.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

TEST_CASE("nt_xent matches PyTorch") {
  for_each_case("nt_xent.json", [](const fixture_case& c) {
    const ssl::nt_xent loss(c.s("tau"));
    if (c.has("bank")) {
      const auto r = loss(c.t("z"), c.t("bank"));
      CHECK(rel(r.value, c.s("value")) <= 1e-4);
      CHECK(rel_error(r.grad_z, c.t("grad_z")) <= 1e-4);
      CHECK(rel_error(r.grad_bank, c.t("grad_bank")) <= 1e-4);
    } else {
      const auto r = loss(c.t("z"));
      CHECK(rel(r.value, c.s("value")) <= 1e-4);
      CHECK(rel_error(r.grad_z, c.t("grad_z")) <= 1e-4);
    }
  });
}

TEST_CASE("nt_xent gradients pass the checker, with and without a bank") {
  const ssl::nt_xent loss(0.3f);
  const tensor z = randn({6, 5}, 1), bank = randn({4, 5}, 2);
  const auto r = loss(z);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0]).value); }, {z}, {r.grad_z});
  const auto rb = loss(z, bank);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], in[1]).value); }, {z, bank},
                   {rb.grad_z, rb.grad_bank});
}

TEST_CASE("nt_xent rejects bad input") {
  CHECK_THROWS_AS(ssl::nt_xent(0.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::nt_xent(-1.0f), ssl::value_error);
  const ssl::nt_xent loss;
  CHECK_THROWS_AS(loss(tensor({5, 4}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(loss(tensor({4, 4}, 1.0f), tensor({3, 5}, 1.0f)), ssl::shape_error);
  try {
    loss(tensor({3, 4}, 1.0f));
  } catch (const ssl::shape_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("even") && Catch::Contains("(3, 4)"));
  }
}

TEST_CASE("info_nce matches PyTorch with per-anchor and shared negatives") {
  for_each_case("info_nce.json", [](const fixture_case& c) {
    const auto r = ssl::info_nce(c.s("tau"))(c.t("anchor"), c.t("positive"), c.t("negatives"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_anchor, c.t("grad_anchor")) <= 1e-4);
    CHECK(rel_error(r.grad_positive, c.t("grad_positive")) <= 1e-4);
    CHECK(rel_error(r.grad_negatives, c.t("grad_negatives")) <= 1e-4);
  });
}

TEST_CASE("info_nce gradients pass the checker") {
  const ssl::info_nce loss(0.5f);
  for (bool shared : {false, true}) {
    const tensor a = randn({3, 4}, 3), p = randn({3, 4}, 4);
    const tensor n = shared ? randn({5, 4}, 5) : randn({3, 2, 4}, 5);
    const auto r = loss(a, p, n);
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], in[1], in[2]).value); }, {a, p, n},
                     {r.grad_anchor, r.grad_positive, r.grad_negatives});
  }
}

TEST_CASE("info_nce rejects mismatched shapes") {
  const ssl::info_nce loss;
  CHECK_THROWS_AS(loss(tensor({3, 4}, 1.0f), tensor({3, 5}, 1.0f), tensor({2, 4}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(loss(tensor({3, 4}, 1.0f), tensor({3, 4}, 1.0f), tensor({2, 2, 4}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(ssl::info_nce(std::nanf("")), ssl::value_error);
}

TEST_CASE("moco matches PyTorch and its gradient passes the checker") {
  for_each_case("moco.json", [](const fixture_case& c) {
    const auto r = ssl::moco(c.s("tau"))(c.t("q"), c.t("k"), c.t("queue"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_q, c.t("grad_q")) <= 1e-4);
  });
  const ssl::moco loss(0.2f);
  const tensor q = randn({4, 6}, 6), k = randn({4, 6}, 7), queue = randn({8, 6}, 8);
  const auto r = loss(q, k, queue);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], k, queue).value); }, {q}, {r.grad_q});
}

TEST_CASE("moco_v3 matches PyTorch and its gradients pass the checker") {
  for_each_case("moco_v3.json", [](const fixture_case& c) {
    const auto r = ssl::moco_v3(c.s("tau"))(c.t("q1"), c.t("q2"), c.t("k1"), c.t("k2"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_q1, c.t("grad_q1")) <= 1e-4);
    CHECK(rel_error(r.grad_q2, c.t("grad_q2")) <= 1e-4);
  });
  const ssl::moco_v3 loss(0.5f);
  const tensor q1 = randn({4, 5}, 9), q2 = randn({4, 5}, 10), k1 = randn({4, 5}, 11), k2 = randn({4, 5}, 12);
  const auto r = loss(q1, q2, k1, k2);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], in[1], k1, k2).value); }, {q1, q2},
                   {r.grad_q1, r.grad_q2});
}

TEST_CASE("moco_queue is a fixed-size FIFO of normalised keys") {
  ssl::moco_queue queue(5, 3, 42);
  CHECK(queue.size() == 5);
  for (int64_t i = 0; i < 5; ++i) {
    double n = 0;
    for (int64_t k = 0; k < 3; ++k) n += double(queue.keys().at(i, k)) * queue.keys().at(i, k);
    CHECK(n == Approx(1.0).margin(1e-5));
  }
  // enqueue 3 then 3 keys: the second batch wraps around to rows 3, 4, 0
  tensor a({3, 3}, 0.0f), b({3, 3}, 0.0f);
  for (int i = 0; i < 3; ++i) {
    a.at(i, i) = 2.0f;          // e_i
    b.at(i, (i + 1) % 3) = -5.0f;  // -e_{i+1}
  }
  queue.enqueue(a);
  CHECK(queue.pointer() == 3);
  CHECK(queue.keys().at(1, 1) == 1.0f);
  queue.enqueue(b);
  CHECK(queue.pointer() == 1);
  CHECK(queue.keys().at(3, 1) == -1.0f);
  CHECK(queue.keys().at(4, 2) == -1.0f);
  CHECK(queue.keys().at(0, 0) == -1.0f);  // overwrote the oldest row
  CHECK(queue.keys().at(1, 1) == 1.0f);   // still the first batch
  CHECK_THROWS_AS(queue.enqueue(tensor({6, 3}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(queue.enqueue(tensor({2, 4}, 1.0f)), ssl::shape_error);
  // checkpoint round trip
  ssl::moco_queue restored(5, 3, 7);
  restored.load(queue.keys(), queue.pointer());
  CHECK(restored.pointer() == 1);
  CHECK(restored.keys().to_vector() == queue.keys().to_vector());
  CHECK_THROWS_AS(restored.load(queue.keys(), 5), ssl::value_error);
  // the loss accepts the queue object
  const auto r = ssl::moco(0.2f)(randn({2, 3}, 1), randn({2, 3}, 2), queue);
  CHECK(std::isfinite(r.value));
}
