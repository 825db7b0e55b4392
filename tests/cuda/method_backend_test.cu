// The library's own method, modules, optimizer and trainer instantiated for the GPU:
// simclr<convnet_s<cuda>, projection_mlp<cuda>> + sgd<cuda> takes the same training steps as the
// <cpu> instantiation (loss, gradients, parameters, BN buffers, optimizer state); ssl::train runs
// it from host batches and writes a checkpoint the CPU model can load; copy_state moves weights
// between the backends.
#include <cstdio>
#include <ssl/data/loader.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/methods/simclr.hpp>
#include <ssl/nn/copy_state.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/train/trainer.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
using simclr_t = simclr<convnet_s<B>, projection_mlp<B>>;

template <class B>
simclr_t<B> make_simclr(uint64_t seed) {
  return simclr_t<B>(convnet_s<B>(1, rng(seed)),
                     projection_mlp<B>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(seed).fork(1)),
                     nt_xent(0.5f));
}
}  // namespace

TEST_CASE("cuda: simclr<convnet_s<cuda>, projection_mlp<cuda>> + sgd<cuda> steps like the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_simclr<cpu>(7);
  auto dev = make_simclr<cuda>(7);  // the only difference: the backend argument
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  expect_identical_buffers(host, dev);
  const sgd_options o{.lr = 0.06f, .momentum = 0.9f, .weight_decay = 5e-4f};
  sgd host_opt(ps.host, o);
  sgd dev_opt(ps.dev, o);
  static_assert(std::same_as<decltype(dev_opt), sgd<cuda>>);
  // The bias of the head's first Linear feeds BatchNorm1d: checked by size.
  run_parity_steps(host, dev, ps, host_opt, dev_opt, two_views(8, 300), {.bn_fed_biases = {"projector.0.bias"}});
  // BN running statistics and counters, then the optimizer state through state_dict().
  expect_close_buffers(host, dev);
  CHECK(dev.encoder().bn(0).num_batches_tracked() == 2);
  const named_tensors hs = host_opt.state_dict(), ds = dev_opt.state_dict();
  REQUIRE(hs.size() == ds.size());
  for (size_t i = 0; i < hs.size(); ++i) {
    INFO("optimizer state " << hs[i].first);
    CHECK(ds[i].first == hs[i].first);
    CHECK(rel_diff(to_device(ds[i].second), hs[i].second) < 2e-3);
  }
}

namespace {
// Two views: the image plus Gaussian noise from the sample's own rng stream.
struct noisy_views {
  std::vector<tensor<cpu>> operator()(const tensor<cpu>& img, rng& g) const {
    std::vector<tensor<cpu>> v(2, img);
    for (auto& t : v)
      for (int64_t i = 0; i < t.numel(); ++i) t[i] += 0.1f * g.normal();
    return v;
  }
};

tensor_refs host_model_tensors(simclr_t<cpu>& m, param_list<cpu>& params,
                               std::vector<std::pair<std::string, tensor<cpu>*>>& buffers) {
  m.collect(params, "");
  m.collect_buffers(buffers, "");
  tensor_refs b;
  for (auto& [n, t] : buffers) b.push_back({n, t});
  return model_tensors(params, b);
}

// Three SGD steps of ssl::train on a small synthetic set; returns the last loss.
template <class B>
float train_three_steps(simclr_t<B>& m, const data::in_memory_dataset& d, const std::string& checkpoint) {
  param_list<B> params;
  m.collect(params, "");
  sgd opt(params, {.lr = 0.05f, .momentum = 0.9f});
  data::loader loader(d, noisy_views{}, {.batch_size = 8, .num_workers = 1, .seed = 3});
  trainer_options o;
  o.max_steps = 3;
  o.progress = false;
  o.checkpoint_path = checkpoint;
  return ssl::train(m, opt, loader, o).last_loss;
}
}  // namespace

TEST_CASE("cuda: ssl::train runs the device method from host batches; its checkpoint loads into the CPU model") {
  SSL_REQUIRE_CUDA_DEVICE();
  rng g(11);
  tensor<cpu> x(shape{32, 1, 16, 16});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  const data::in_memory_dataset d(std::move(x));
  auto host = make_simclr<cpu>(3);
  auto dev = make_simclr<cuda>(3);
  const std::string ckpt = "cuda_train_test_ckpt.safetensors";
  const float host_loss = train_three_steps(host, d, "");
  const float dev_loss = train_three_steps(dev, d, ckpt);
  CHECK(std::abs(dev_loss - host_loss) <= 1e-3f * std::abs(host_loss));

  // The GPU run's checkpoint (written through host copies) in a fresh CPU model.
  auto loaded = make_simclr<cpu>(99);
  param_list<cpu> lp, hp;
  std::vector<std::pair<std::string, tensor<cpu>*>> lb, hb;
  const tensor_refs lt = host_model_tensors(loaded, lp, lb), ht = host_model_tensors(host, hp, hb);
  sgd lopt(lp, {.lr = 0.05f, .momentum = 0.9f});
  const training_state st = load_checkpoint(ckpt, lt, lopt);
  std::remove(ckpt.c_str());
  CHECK(st.step == 3);
  REQUIRE(lt.size() == ht.size());
  for (size_t i = 0; i < lt.size(); ++i) {
    INFO("tensor " << ht[i].name);
    CHECK(rel_diff(to_device(*lt[i].t), *ht[i].t) < 1e-3);
  }
}

TEST_CASE("cuda: copy_state moves weights and BN statistics between the backends, exactly") {
  SSL_REQUIRE_CUDA_DEVICE();
  convnet_s<cpu> a(1, rng(1));
  const tensor<cpu> x = random(shape{4, 1, 12, 12}, 5, 0.0f, 1.0f);
  (void)a.forward(x);  // running statistics away from their initial values
  convnet_s<cuda> dev(1, rng(2));
  copy_state(a, dev);
  convnet_s<cpu> back(1, rng(3));
  copy_state(dev, back);
  CHECK(rel_diff(to_device(back.infer(x)), a.infer(x)) == 0.0);
  CHECK(back.bn(2).num_batches_tracked() == 1);
  CHECK(dev.bn(2).num_batches_tracked() == 1);
  convnet_s<cuda> wrong(3, rng(2));  // 3 input channels: the first convolution differs
  CHECK_THROWS_AS(copy_state(a, wrong), shape_error);
}
