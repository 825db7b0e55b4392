#pragma once
// Shared by the data-parallel tests: a tiny dataset, a two-view policy, and the runs compared —
// one process with batch B W against W thread ranks with batch B each (ssl::dist::data_parallel).
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <ssl/data/loader.hpp>
#include <ssl/dist/data_parallel.hpp>
#include <ssl/dist/thread_group.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/train/trainer.hpp>
#include <vector>

namespace dp_test {

using namespace ssl;

/// `count` views (two by default): the image plus Gaussian noise from the sample's own stream.
struct noisy_views {
  int count = 2;
  std::vector<tensor<cpu>> operator()(const tensor<cpu>& img, rng& g) const {
    std::vector<tensor<cpu>> v(static_cast<size_t>(count), img);
    for (auto& t : v)
      for (int64_t i = 0; i < t.numel(); ++i) t[i] += 0.1f * g.normal();
    return v;
  }
};

/// 48 random 1 x side x side images.
inline data::in_memory_dataset tiny_data(int64_t side = 6) {
  rng g(11);
  tensor<cpu> x(shape{48, 1, side, side});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  return data::in_memory_dataset(std::move(x));
}

inline std::vector<float> flat_params(param_list<cpu>& ps) {
  std::vector<float> w;
  for (auto& r : ps) w.insert(w.end(), r.p->value.data(), r.p->value.data() + r.p->value.numel());
  return w;
}

inline std::vector<float> flat_buffers(const std::vector<std::pair<std::string, tensor<cpu>*>>& bs) {
  std::vector<float> w;
  for (const auto& [name, t] : bs) w.insert(w.end(), t->data(), t->data() + t->numel());
  return w;
}

inline trainer_options two_epochs() {
  trainer_options o;
  o.epochs = 2;
  o.progress = false;
  return o;
}

inline float max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

/// Trains `m` 2 epochs with SGD (momentum 0.9, wd 1e-4) on batches of `batch`; returns its parameters.
template <class M>
std::vector<float> train_single(M& m, const data::in_memory_dataset& d, int64_t batch, float lr = 0.05f,
                                noisy_views views = {}) {
  param_list<cpu> ps;
  m.collect(ps, "");
  sgd opt(ps, {.lr = lr, .momentum = 0.9f, .weight_decay = 1e-4f});
  data::loader loader(d, views, {.batch_size = batch, .num_workers = 0, .seed = 3});
  ssl::train(m, opt, loader, two_epochs());
  return flat_params(ps);
}

/// What each rank of a data-parallel run ends with.
struct rank_result {
  std::vector<float> params, buffers;
  float spread = -1;
  int64_t steps = 0;
};

/// W thread ranks; rank r builds its method with make(comm), wraps it in data_parallel and trains it
/// as train_single does, on its shard of batch B.
template <class Make>
std::vector<rank_result> train_ranks(int W, int64_t B, const data::in_memory_dataset& d, Make make, float lr = 0.05f,
                                     noisy_views views = {}) {
  std::vector<rank_result> out(static_cast<size_t>(W));
  dist::thread_group(W).run([&](dist::thread_communicator& comm) {
    auto m = make(comm);
    dist::data_parallel dp(m, comm);
    param_list<cpu> ps;
    dp.collect(ps, "");
    sgd opt(ps, {.lr = lr, .momentum = 0.9f, .weight_decay = 1e-4f});
    data::loader loader(d, views,
                        {.batch_size = B, .num_workers = 1, .seed = 3, .rank = comm.rank(), .world_size = W});
    rank_result& r = out[size_t(comm.rank())];
    r.steps = ssl::train(dp, opt, loader, two_epochs()).steps;
    r.params = flat_params(ps);
    std::vector<std::pair<std::string, tensor<cpu>*>> bs;
    dp.collect_buffers(bs, "");
    r.buffers = flat_buffers(bs);
    r.spread = dist::max_replica_difference(m, comm);
  });
  return out;
}

}  // namespace dp_test
