// resnet<cuda> (ResNet-18, both stems: the ImageNet stem has the max pool) against resnet<cpu> built
// from the same seed: identical initial values, then forward features, every parameter gradient and
// the input gradient of one train-mode step, the BN running statistics, and infer.
#include <ssl/encoders/resnet.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

namespace {
void check_resnet(resnet_stem stem, const shape& input) {
  const resnet_options o{.stem = stem, .in_channels = 3};
  resnet<cpu> host(o, rng(5));
  resnet<cuda> dev(o, rng(5));  // the only difference: the backend argument
  param_list<cpu> hp;
  param_list<cuda> dp;
  host.collect(hp, "");
  dev.collect(dp, "");
  REQUIRE(hp.size() == dp.size());
  for (size_t i = 0; i < hp.size(); ++i) {
    INFO("parameter " << hp[i].name);
    CHECK(rel_diff(dp[i].p->value, hp[i].p->value) == 0.0);
  }
  const tensor<cpu> x = random(input, 9, 0.0f, 1.0f), dy = random(shape{input[0], 512}, 10);
  auto hy = host.forward(x);
  auto dyv = dev.forward(to_device(x));
  CHECK(rel_diff(dyv.y, hy.y) < 1e-4);
  const tensor<cpu> hdx = host.backward(hy.saved, dy);
  const tensor<cuda> ddx = dev.backward(dyv.saved, to_device(dy));
  CHECK(rel_diff(ddx, hdx) < 2e-3);
  for (size_t i = 0; i < hp.size(); ++i) {
    INFO("gradient of " << hp[i].name);
    CHECK(rel_diff(dp[i].p->grad, hp[i].p->grad) < 2e-3);
  }
  std::vector<std::pair<std::string, tensor<cpu>*>> hb;
  std::vector<std::pair<std::string, tensor<cuda>*>> db;
  host.collect_buffers(hb, "");
  dev.collect_buffers(db, "");
  REQUIRE(hb.size() == db.size());
  for (size_t i = 0; i < hb.size(); ++i) {
    INFO("buffer " << hb[i].first);
    CHECK(rel_diff(*db[i].second, *hb[i].second) < 1e-4);
  }
  CHECK(rel_diff(dev.infer(to_device(x)), host.infer(x)) < 1e-4);
}
}  // namespace

TEST_CASE("cuda: resnet<cuda> (CIFAR stem) matches resnet<cpu>: features, gradients, BN statistics") {
  SSL_REQUIRE_CUDA_DEVICE();
  check_resnet(resnet_stem::cifar, shape{4, 3, 16, 16});
}

TEST_CASE("cuda: resnet<cuda> (ImageNet stem with max pool) matches resnet<cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  check_resnet(resnet_stem::imagenet, shape{2, 3, 40, 40});
}
