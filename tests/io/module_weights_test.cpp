#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/io/module_weights.hpp>
#include <ssl/methods/simclr.hpp>
#include <ssl/optim/sgd.hpp>

using Catch::Matchers::Contains;
using namespace ssl;

namespace {
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ssl_test_" + std::to_string(::getpid()) + "_" + name)).string();
}
// max |a - b| over every tensor of two modules of the same type
template <class M>
float max_difference(M& a, M& b) {
  const tensor_refs ra = module_tensors(a), rb = module_tensors(b);
  REQUIRE(ra.size() == rb.size());
  float d = 0;
  for (size_t i = 0; i < ra.size(); ++i)
    for (int64_t j = 0; j < ra[i].t->numel(); ++j) d = std::max(d, std::abs((*ra[i].t)[j] - (*rb[i].t)[j]));
  return d;
}
}  // namespace

TEST_CASE("module weights: save and load round trip, BN running statistics included") {
  convnet_s<> a(1, rng(1)), b(1, rng(2));
  // make the running statistics differ from their initial values
  tensor<cpu> x(shape{4, 1, 28, 28});
  rng g(5);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  (void)a.forward(x);
  REQUIRE(max_difference(a, b) > 0.01f);
  const std::string path = temp_path("convnet.safetensors");
  save_module_weights(path, a);
  const auto raw = load_safetensors(path);
  CHECK(raw.tensors.front().first == "0.weight");  // PyTorch nn.Sequential names
  load_module_weights(path, b);
  CHECK(max_difference(a, b) == 0.0f);
  std::filesystem::remove(path);
}

TEST_CASE("module weights: the encoder of a training checkpoint loads by its prefix") {
  const rng g(3);
  simclr method(convnet_s<>(1, g), projection_mlp<>({.in_dim = 256, .hidden_dim = 64, .out_dim = 32}, g.fork(1)),
                nt_xent(0.5f));
  param_list<cpu> params;
  method.collect(params, "");
  std::vector<std::pair<std::string, tensor<cpu>*>> raw;
  method.collect_buffers(raw, "");
  tensor_refs buffers;
  for (auto& [n, t] : raw) buffers.push_back({n, t});
  sgd opt(params, sgd_options{0.1f, 0.9f, 0.0f, false});
  const std::string path = temp_path("method.ckpt.safetensors");
  save_checkpoint(path, params, opt, training_state{}, buffers);

  convnet_s<> enc(1, rng(99));
  REQUIRE(max_difference(enc, method.encoder()) > 0.01f);
  load_module_weights(path, enc, "encoder");
  CHECK(max_difference(enc, method.encoder()) == 0.0f);

  SECTION("a wrong prefix names what was looked for") {
    CHECK_THROWS_WITH(load_module_weights(path, enc, "backbone"), Contains("model.backbone.*"));
  }
  SECTION("the head's tensors do not fit the encoder: the first mismatching one is named") {
    CHECK_THROWS_AS(load_module_weights(path, enc, "projector"), shape_error);
    CHECK_THROWS_WITH(load_module_weights(path, enc, "projector"), Contains("'0.weight'"));
  }
  std::filesystem::remove(path);
}

TEST_CASE("module weights: a shape mismatch is a shape_error naming the tensor, and nothing changes") {
  convnet_s<> one_channel(1, rng(1)), three_channels(3, rng(2));
  const std::string path = temp_path("c3.safetensors");
  save_module_weights(path, three_channels);
  convnet_s<> before = one_channel;
  CHECK_THROWS_AS(load_module_weights(path, one_channel), shape_error);
  CHECK_THROWS_WITH(load_module_weights(path, one_channel), Contains("0.weight"));
  CHECK(max_difference(one_channel, before) == 0.0f);
  std::filesystem::remove(path);
}
