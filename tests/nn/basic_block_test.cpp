#include <catch2/catch.hpp>
#include <ssl/nn/basic_block.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
T random_tensor(const shape& s, uint64_t seed, float scale = 1.0f) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * g.normal();
  return t;
}

// Loads torchvision-named weights, runs a train step and an eval forward, compares with PyTorch.
void check_against_fixture(ssl::basic_block<>& blk, const std::string& file) {
  ssl_test::fixture fx(file);
  auto params = ssl::parameters(blk);
  int matched = 0;
  for (auto& pr : params) {
    pr.p->value = fx.tensor("param." + pr.name);  // throws if the name is not torchvision's
    ++matched;
  }
  CHECK(matched == (blk.has_downsample() ? 9 : 6));
  const T x = fx.tensor("x");
  auto [y, saved] = blk.forward(x);
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  const T dx = blk.backward(saved, fx.tensor("dy"));
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  for (auto& pr : params) {
    INFO(pr.name);
    CHECK(ssl_test::rel_error(pr.p->grad, fx.tensor("grad." + pr.name)) <= 1e-4);
  }
  std::vector<std::pair<std::string, T*>> buffers;
  blk.collect_buffers(buffers, "");
  CHECK(buffers.size() == (blk.has_downsample() ? 9u : 6u));
  for (auto& [name, buf] : buffers) {
    if (name.find("running") == std::string::npos) continue;
    INFO(name);
    CHECK(ssl_test::rel_error(*buf, fx.tensor("buffer." + name)) <= 1e-4);
  }
  CHECK(ssl_test::rel_error(blk.infer(x), fx.tensor("y_eval")) <= 1e-4);
}
}  // namespace

TEST_CASE("basic_block matches torchvision's BasicBlock") {
  SECTION("stride 2 with 1x1 conv + BN shortcut") {
    ssl::basic_block<> blk(4, 8, 2, ssl::rng(1));
    REQUIRE(blk.has_downsample());
    check_against_fixture(blk, "nn/conv_basic_block_down.json");
  }
  SECTION("identity shortcut") {
    ssl::basic_block<> blk(4, 4, 1, ssl::rng(2));
    REQUIRE(!blk.has_downsample());
    check_against_fixture(blk, "nn/conv_basic_block_identity.json");
  }
}

namespace {
// BN output scales make dy/dθ large, so ReLU kinks lie close (in θ) to the sampled points;
// BN shifts of +1 keep most ReLU inputs away from 0 (the fixtures cover the masked case).
void shift_batch_norms(ssl::basic_block<>& blk) {
  for (auto& pr : ssl::parameters(blk))
    if (pr.p->kind == ssl::param_kind::norm && pr.name.ends_with("bias")) pr.p->value.fill(1.0f);
}
}  // namespace

TEST_CASE("basic_block gradients pass the finite-difference check") {
  ssl::testing::gradient_check_options o;
  o.max_checks = 12;
  o.eps = 1e-3;
  o.atol = 5e-3;
  SECTION("downsampling block") {
    ssl::basic_block<> blk(2, 4, 2, ssl::rng(3));
    shift_batch_norms(blk);
    auto r = ssl::testing::check_module_gradients(blk, random_tensor(shape{2, 2, 5, 5}, 4), o);
    INFO(r.report());
    CHECK(r.ok());
  }
  SECTION("identity block") {
    ssl::basic_block<> blk(3, 3, 1, ssl::rng(5));
    shift_batch_norms(blk);
    auto r = ssl::testing::check_module_gradients(blk, random_tensor(shape{2, 3, 4, 4}, 6), o);
    INFO(r.report());
    CHECK(r.ok());
  }
}

TEST_CASE("basic_block rejects inputs with the wrong channel count") {
  ssl::basic_block<> blk(4, 8, 2, ssl::rng(1));
  CHECK_THROWS_AS(blk.forward(T(shape{2, 3, 6, 6}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(blk.infer(T(shape{2, 3, 6, 6}, 0.0f)), Catch::Matchers::Contains("(N, 4, H, W)"));
}
