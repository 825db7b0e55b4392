// Stability: no NaN or Inf at tau = 0.01 with identical or opposite embeddings, with zero
// vectors, or with logits of magnitude 1e4.
#include <ssl/losses.hpp>

#include "loss_support.hpp"

using namespace loss_test;

// Every loss satisfies the Loss concept over its inputs (and not over the wrong ones).
static_assert(ssl::Loss<ssl::nt_xent, tensor> && ssl::Loss<ssl::nt_xent, tensor, tensor>);
static_assert(ssl::Loss<ssl::info_nce, tensor, tensor, tensor>);
static_assert(ssl::Loss<ssl::moco, tensor, tensor, tensor> && ssl::Loss<ssl::moco, tensor, tensor, ssl::moco_queue>);
static_assert(ssl::Loss<ssl::moco_v3, tensor, tensor, tensor, tensor>);
static_assert(ssl::Loss<ssl::byol, tensor, tensor> && ssl::Loss<ssl::simsiam, tensor, tensor>);
static_assert(ssl::Loss<ssl::dino, tensor, tensor>);
static_assert(ssl::Loss<ssl::masked_reconstruction, tensor, tensor, tensor>);
static_assert(ssl::Loss<ssl::cross_entropy, tensor, std::vector<int64_t>>);
static_assert(ssl::Loss<ssl::koleo, tensor> && ssl::Loss<ssl::barlow_twins, tensor, tensor>);
static_assert(ssl::Loss<ssl::vicreg, tensor, tensor>);
static_assert(!ssl::Loss<ssl::byol, tensor> && !ssl::Loss<ssl::dino, tensor, int>);

namespace {
// (rows, D) where every row is v (identical), or alternating v / -v (opposite).
tensor repeated(int64_t rows, int64_t d, bool alternate, float scale = 1.0f) {
  tensor t({rows, d});
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < d; ++k) t.at(i, k) = scale * float(k + 1) * (alternate && i % 2 ? -1.0f : 1.0f);
  return t;
}
}  // namespace

TEST_CASE("contrastive losses stay finite at tau = 0.01 with identical, opposite and zero embeddings") {
  const ssl::nt_xent nt(0.01f);
  const ssl::info_nce nce(0.01f);
  const ssl::moco mc(0.01f);
  const ssl::moco_v3 m3(0.01f);
  for (int kind = 0; kind < 3; ++kind) {
    INFO("kind " << kind << " (0 identical, 1 opposite, 2 zero)");
    const tensor z = kind == 2 ? tensor({8, 4}, 0.0f) : repeated(8, 4, kind == 1, 1e3f);
    const auto r = nt(z);
    CHECK(std::isfinite(r.value));
    CHECK(all_finite(r.grad_z));
    const auto rb = nt(z, z);
    CHECK(std::isfinite(rb.value));
    CHECK(all_finite(rb.grad_bank));
    const tensor half = repeated(4, 4, kind == 1);
    const tensor a = kind == 2 ? tensor({4, 4}, 0.0f) : half;
    const auto n = nce(a, half, kind == 2 ? tensor({4, 3, 4}, 0.0f) : repeated(4, 12, kind == 1).reshaped({4, 3, 4}));
    CHECK(std::isfinite(n.value));
    CHECK((all_finite(n.grad_anchor) && all_finite(n.grad_positive) && all_finite(n.grad_negatives)));
    const auto q = mc(a, half, z);
    CHECK(std::isfinite(q.value));
    CHECK(all_finite(q.grad_q));
    const auto v3 = m3(a, a, half, half);
    CHECK(std::isfinite(v3.value));
    CHECK((all_finite(v3.grad_q1) && all_finite(v3.grad_q2)));
  }
  // identical rows: every similarity is 1/tau = 100, the loss is log(2N - 1) exactly
  CHECK(nt(repeated(8, 4, false)).value == Approx(std::log(7.0)).epsilon(1e-5));
}

TEST_CASE("regression and regularising losses stay finite with identical, opposite and zero embeddings") {
  for (int kind = 0; kind < 3; ++kind) {
    INFO("kind " << kind);
    const tensor z = kind == 2 ? tensor({6, 4}, 0.0f) : repeated(6, 4, kind == 1);
    const tensor w = kind == 2 ? tensor({6, 4}, 0.0f) : repeated(6, 4, kind == 0);
    const auto b = ssl::byol()(z, w);
    CHECK((std::isfinite(b.value) && all_finite(b.grad_p)));
    const auto s = ssl::simsiam()(z, w);
    CHECK((std::isfinite(s.value) && all_finite(s.grad_p)));
    const auto k = ssl::koleo()(z);
    CHECK((std::isfinite(k.value) && all_finite(k.grad_x)));
    const auto bt = ssl::barlow_twins()(z, w);
    CHECK((std::isfinite(bt.value) && all_finite(bt.grad_z1) && all_finite(bt.grad_z2)));
    const auto vr = ssl::vicreg()(z, w);
    CHECK((std::isfinite(vr.value) && all_finite(vr.grad_x) && all_finite(vr.grad_y)));
    for (auto dist : {ssl::triplet_distance::squared_euclidean, ssl::triplet_distance::cosine}) {
      const auto t = ssl::triplet(1.0f, dist)(z, w, z);
      CHECK((std::isfinite(t.value) && all_finite(t.grad_anchor)));
      const auto m = ssl::triplet_mining(ssl::triplet_strategy::batch_all, 1.0f, dist)(z, {0, 1, 0, 1, 0, 1});
      CHECK((std::isfinite(m.value) && all_finite(m.grad_x)));
    }
  }
}

TEST_CASE("losses on logits of magnitude 1e4 stay finite (log-sum-exp)") {
  tensor logits = randn({6, 5}, 51, 1e4f);
  const auto ce = ssl::cross_entropy(0.1f)(logits, {0, 1, 2, 3, 4, 0});
  CHECK(std::isfinite(ce.value));
  CHECK(ce.value > 1.0f);  // huge wrong logits: a huge loss, not NaN
  CHECK(all_finite(ce.grad_logits));
  ssl::dino d(5, 0.1f, 0.01f);
  const tensor s = randn({4, 3, 5}, 52, 1e4f), t = randn({2, 3, 5}, 53, 1e4f);
  const auto r = d(s, t);
  CHECK(std::isfinite(r.value));
  CHECK(all_finite(r.grad_student));
  d.update_center(t);
  CHECK(all_finite(d.center()));
  const auto mae = ssl::masked_reconstruction(true)(randn({2, 3, 4}, 54, 1e4f), tensor({2, 3, 4}, 7.0f),
                                                    tensor({2, 3}, 1.0f));  // constant patches: var 0
  CHECK(std::isfinite(mae.value));
  CHECK(all_finite(mae.grad_pred));
}
