// projection_mlp with activation = gelu (MSN's projector): the layers it composes, PyTorch's
// nn.Sequential names (the same as the ReLU head's), and its gradients against finite differences.
#include <catch2/catch.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/testing/gradient_check.hpp>

#include "support/fixtures.hpp"

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
T random_tensor(const shape& s, uint64_t seed) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
  return t;
}
const ssl::projection_mlp_options gelu_options{.in_dim = 5, .hidden_dim = 7, .out_dim = 3, .layers = 3,
                                               .activation = ssl::mlp_activation::gelu};
}  // namespace

TEST_CASE("projection_mlp gelu = (Linear -> BN -> GELU) x 2 -> Linear, names as the ReLU head's") {
  ssl::projection_mlp<> head(gelu_options, ssl::rng(2));
  ssl::projection_mlp_options relu_options = gelu_options;
  relu_options.activation = ssl::mlp_activation::relu;
  ssl::projection_mlp<> relu_head(relu_options, ssl::rng(2));
  std::vector<std::string> names, relu_names;
  for (auto& r : ssl::parameters(head)) names.push_back(r.name);
  for (auto& r : ssl::parameters(relu_head)) relu_names.push_back(r.name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias",
                                          "4.weight", "4.bias", "6.weight", "6.bias"});
  CHECK(names == relu_names);

  // the same composition from the separate layers (same weights; fresh BNs, train mode)
  const T x = random_tensor(shape{6, 5}, 3);
  ssl::linear<> l0(5, 7, true, ssl::rng(9)), l3(7, 7, true, ssl::rng(9)), l6(7, 3, true, ssl::rng(9));
  auto ps = ssl::parameters(head);
  l0.weight().value = ps[0].p->value;
  l0.bias().value = ps[1].p->value;
  l3.weight().value = ps[4].p->value;
  l3.bias().value = ps[5].p->value;
  l6.weight().value = ps[8].p->value;
  l6.bias().value = ps[9].p->value;
  ssl::batch_norm<> b1({.channels = 7}), b4({.channels = 7});
  ssl::gelu<> act;
  const T h1 = act.forward(b1.forward(l0.forward(x).y).y).y;
  const T h2 = act.forward(b4.forward(l3.forward(h1).y).y).y;
  const T want = l6.forward(h2).y;
  const T got = head.forward(x).y;
  CHECK(ssl_test::rel_error(got, want) <= 1e-6);
  // and not the ReLU head's output (same weights: GELU passes some of the negative side)
  CHECK(ssl_test::rel_error(relu_head.forward(x).y, got) > 1e-3);
}

TEST_CASE("projection_mlp gelu: input and parameter gradients match finite differences") {
  ssl::projection_mlp<> head(gelu_options, ssl::rng(4));
  const auto r = ssl::testing::check_module_gradients(head, random_tensor(shape{8, 5}, 5), {.eps = 1e-3});
  INFO(r.report());
  CHECK(r.ok());
  CHECK(r.checked > 40);
  // without BN: Linear -> GELU blocks
  ssl::projection_mlp_options o = gelu_options;
  o.batch_norm = false;
  ssl::projection_mlp<> plain(o, ssl::rng(6));
  CHECK(ssl::parameters(plain).size() == 6);
  const auto rp = ssl::testing::check_module_gradients(plain, random_tensor(shape{4, 5}, 7), {.eps = 1e-3});
  INFO(rp.report());
  CHECK(rp.ok());
}
