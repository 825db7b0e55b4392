#include <catch2/catch.hpp>
#include <ssl/encoders/resnet.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

static_assert(ssl::Encoder<ssl::resnet<>>);

namespace {
T random_tensor(const shape& s, uint64_t seed) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
  return t;
}
size_t buffer_count(ssl::resnet<>& net) {
  std::vector<std::pair<std::string, T*>> buffers;
  net.collect_buffers(buffers, "");
  return buffers.size();
}
}  // namespace

TEST_CASE("resnet18 parameter counts equal torchvision's resnet18 (adapted stem, no fc)") {
  ssl_test::fixture fx("nn/conv_resnet18_counts.json");
  for (auto stem : {ssl::resnet_stem::imagenet, ssl::resnet_stem::cifar}) {
    for (int64_t cin : {1, 3}) {
      const std::string key = std::string(stem == ssl::resnet_stem::imagenet ? "imagenet" : "cifar") + "_c" +
                              std::to_string(cin);
      INFO(key);
      ssl::resnet<> net({.stem = stem, .in_channels = cin});
      CHECK(ssl::parameter_count(net) == int64_t(fx.scalar(key + ".params")));
      CHECK(ssl::parameters(net).size() == size_t(fx.scalar(key + ".param_tensors")));
      CHECK(buffer_count(net) == size_t(fx.scalar(key + ".buffers")));
      CHECK(net.feature_dim() == 512);
    }
  }
  ssl::resnet<> net = ssl::resnet18_cifar<>(3);
  CHECK(ssl::parameter_count(net) == 11168832);  // torchvision 11,689,512 - fc 513,000 - (9,408 - 1,728) stem
}

TEST_CASE("resnet18 parameter names follow torchvision") {
  auto net = ssl::resnet18_imagenet<>(1);
  auto params = ssl::parameters(net);
  CHECK(params.front().name == "conv1.weight");
  CHECK(params.front().p->value.shape() == shape{64, 1, 7, 7});
  CHECK(params.back().name == "layer4.1.bn2.bias");
  bool found = false;
  for (auto& pr : params)
    if (pr.name == "layer2.0.downsample.0.weight") {
      found = true;
      CHECK(pr.p->value.shape() == shape{128, 64, 1, 1});
    }
  CHECK(found);
}

TEST_CASE("resnet18 runs forward and backward with both stems on small inputs") {
  SECTION("CIFAR stem, 1 channel, 12x12 then 8x8") {
    auto net = ssl::resnet18_cifar<>(1, ssl::rng(2));
    const T x = random_tensor(shape{2, 1, 12, 12}, 3);
    auto o = net.forward(x);
    REQUIRE(o.y.shape() == shape{2, 512});
    const T dx = net.backward(o.saved, random_tensor(shape{2, 512}, 4));
    CHECK(dx.shape() == x.shape());
    CHECK(dx.vec().norm() > 0);
    CHECK(net.infer(random_tensor(shape{3, 1, 8, 8}, 5)).shape() == shape{3, 512});
  }
  SECTION("ImageNet stem, 3 channels, 32x32") {
    auto net = ssl::resnet18_imagenet<>(3, ssl::rng(6));
    const T x = random_tensor(shape{2, 3, 32, 32}, 7);
    auto o = net.forward(x);
    REQUIRE(o.y.shape() == shape{2, 512});
    const T dx = net.backward(o.saved, random_tensor(shape{2, 512}, 8));
    CHECK(dx.shape() == x.shape());
    CHECK(dx.vec().allFinite());
    CHECK(ssl::parameters(net).front().p->grad.vec().norm() > 0);
  }
}

TEST_CASE("resnet rejects inputs with the wrong channel count") {
  auto net = ssl::resnet18_cifar<>(1);
  CHECK_THROWS_AS(net.forward(T(shape{2, 3, 8, 8}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(net.infer(T(shape{2, 3, 8, 8}, 0.0f)),
                    Catch::Matchers::Contains("(N, 1, H, W)") && Catch::Matchers::Contains("(2, 3, 8, 8)"));
}
