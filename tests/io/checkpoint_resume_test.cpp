#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <ssl/core/rng.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/optim/sgd.hpp>

using Catch::Matchers::Contains;

namespace {
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ssl_test_" + std::to_string(::getpid()) + "_" + name)).string();
}
/// A tiny "model": a weight, a bias and a running-mean buffer, with a deterministic gradient.
struct toy_model {
  ssl::parameter<ssl::cpu> w{{3, 2}}, b{{3}, ssl::param_kind::bias};
  ssl::tensor<ssl::cpu> running_mean = ssl::tensor<ssl::cpu>::zeros({3});
  explicit toy_model(uint64_t seed) {
    ssl::rng g(seed);
    for (int64_t i = 0; i < w.value.numel(); ++i) w.value[i] = g.normal();
  }
  ssl::param_list<ssl::cpu> params() { return {{"w", &w}, {"b", &b}}; }
  ssl::tensor_refs buffers() { return {{"running_mean", &running_mean}}; }
  // gradient of 0.5 * ||w||^2 + sum(b * w[:,0]) ... any fixed function of the parameters
  void compute_grads() {
    for (int64_t i = 0; i < w.value.numel(); ++i) w.grad[i] = w.value[i] + 0.1f * float(i);
    for (int64_t i = 0; i < b.value.numel(); ++i) b.grad[i] = w.value[i * 2] - b.value[i];
    for (int64_t i = 0; i < 3; ++i) running_mean[i] = 0.9f * running_mean[i] + 0.1f * w.value[i];
  }
};
template <class Opt>
void train(toy_model& m, Opt& opt, int steps) {
  for (int s = 0; s < steps; ++s) {
    m.compute_grads();
    opt.step();
  }
}
}  // namespace

TEST_CASE("resuming from a checkpoint continues exactly where training stopped") {
  const std::string path = temp_path("resume.safetensors");
  const ssl::adamw_options o{.lr = 0.05f, .weight_decay = 0.1f};
  toy_model straight(1);
  ssl::adamw opt_straight(straight.params(), o);
  train(straight, opt_straight, 6);

  toy_model first(1);
  ssl::adamw opt_first(first.params(), o);
  train(first, opt_first, 3);
  ssl::training_state st;
  st.step = 3;
  st.epoch = 1;
  st.rng_counters["loader"] = 123456789012345ull;
  st.extra["lr_peak"] = 0.05;
  ssl::save_checkpoint(path, first.params(), opt_first, st, first.buffers());

  toy_model resumed(99);  // different initial weights: all must come from the file
  ssl::adamw opt_resumed(resumed.params(), o);
  const ssl::training_state back = ssl::load_checkpoint(path, resumed.params(), opt_resumed, resumed.buffers());
  CHECK(back.step == 3);
  CHECK(back.epoch == 1);
  CHECK(back.rng_counters.at("loader") == 123456789012345ull);
  CHECK(back.extra.at("lr_peak").get<double>() == 0.05);
  CHECK(opt_resumed.step_count() == 3);
  train(resumed, opt_resumed, 3);
  CHECK(resumed.w.value.to_vector() == straight.w.value.to_vector());
  CHECK(resumed.b.value.to_vector() == straight.b.value.to_vector());
  CHECK(resumed.running_mean.to_vector() == straight.running_mean.to_vector());

  const auto raw = ssl::read_checkpoint(path);
  CHECK(raw.model.size() == 3);
  CHECK(raw.optimizer.size() == 1 + 2 * 2);
  std::filesystem::remove(path);
}

TEST_CASE("loading a checkpoint into a different model or optimizer fails cleanly") {
  const std::string path = temp_path("mismatch.safetensors");
  toy_model m(1);
  ssl::sgd opt(m.params(), {.lr = 0.1f, .momentum = 0.9f});
  train(m, opt, 1);
  ssl::save_checkpoint(path, m.params(), opt, {}, m.buffers());

  toy_model other(2);
  const auto w_before = other.w.value.to_vector();
  ssl::sgd opt_other(other.params(), {.lr = 0.1f, .momentum = 0.9f});
  // the buffer is missing from the target: "unexpected tensor"
  CHECK_THROWS_WITH(ssl::load_checkpoint(path, other.params(), opt_other), Contains("unexpected tensor 'running_mean'"));
  // an optimizer without momentum has no buffers: its load fails and the model is rolled back
  ssl::sgd plain(other.params(), {.lr = 0.1f});
  CHECK_THROWS_WITH(ssl::load_checkpoint(path, other.params(), plain, other.buffers()), Contains("unexpected entry"));
  CHECK(other.w.value.to_vector() == w_before);
  // a model with a differently shaped weight
  ssl::parameter<ssl::cpu> wide({3, 4});
  ssl::param_list<ssl::cpu> wrong{{"w", &wide}, {"b", &other.b}};
  ssl::sgd opt_wrong(wrong, {.lr = 0.1f, .momentum = 0.9f});
  CHECK_THROWS_AS(ssl::load_checkpoint(path, wrong, opt_wrong, other.buffers()), ssl::shape_error);
  // a plain safetensors file is not a checkpoint
  ssl::save_safetensors(path, {{"model.w", ssl::tensor<ssl::cpu>({1})}});
  CHECK_THROWS_AS(ssl::read_checkpoint(path), ssl::format_error);
  CHECK_THROWS_WITH(ssl::read_checkpoint(path), Contains("expected 'ssl-checkpoint-1'"));
  std::filesystem::remove(path);
}
