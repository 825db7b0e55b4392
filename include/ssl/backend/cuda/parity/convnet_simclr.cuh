#pragma once
// Workload W1 of shared/WORKLOADS.md written once over the ops:: overload sets, so that the same
// code runs on either backend and switching is one template argument:
//   convnet_simclr<cpu> a(seed, batch);  convnet_simclr<cuda> b(seed, batch);  a.step(x1, x2); b.step(...)
// ConvNet-S (4 x [conv3x3 no bias, BN, ReLU], GAP) -> Linear(256,256) -> BN1d -> ReLU -> Linear(256,128),
// both views as one batch of 2N, NT-Xent (T = 0.5), SGD (lr 0.06, momentum 0.9, wd 5e-4).
// Used by the CPU/GPU parity test of a full training step and by the GPU benchmark of W1.
// (The library's module classes are CPU-only for now; this is the op-level form of the same model.)
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "../../../core/rng.hpp"
#include "../../../losses/nt_xent.hpp"
#include "../../../optim/sgd.hpp"
#include "../batch_norm.cuh"
#include "../buffer.cuh"
#include "../conv2d.cuh"
#include "../elementwise.cuh"
#include "../linear.cuh"
#include "../nt_xent.cuh"
#include "../optim.cuh"
#include "../pooling.cuh"

namespace ssl::parity {

template <class B>
using bn_stats = std::conditional_t<std::is_same_v<B, cpu>, std::vector<float>, tensor<cuda>>;

inline constexpr float w1_temperature = 0.5f, w1_lr = 0.06f, w1_momentum = 0.9f, w1_weight_decay = 5e-4f;
inline constexpr float bn_eps = 1e-5f, bn_momentum = 0.1f;

template <class B>
class convnet_simclr {
 public:
  static constexpr int convs = 4;
  static constexpr int64_t channels[convs + 1] = {1, 32, 64, 128, 256};
  static constexpr int64_t strides[convs] = {1, 2, 2, 2};
  // parameters, in a fixed order: conv{l}.weight, bn{l}.weight, bn{l}.bias, then the head
  enum : int { head_w1 = 3 * convs, head_b1, head_bn_w, head_bn_b, head_w2, head_b2, param_count };

  /// Parameters drawn on the host from `seed` (kaiming-uniform-like bounds; BN gamma 1, beta 0),
  /// then moved to B: two instances with the same seed hold identical values.
  explicit convnet_simclr(uint64_t seed) {
    rng g(seed);
    auto uniform = [&](const shape& s, float bound) {
      tensor<cpu> t(s);
      for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.uniform(-bound, bound);
      return t;
    };
    auto constant = [](const shape& s, float v) { return tensor<cpu>(s, v); };
    std::array<tensor<cpu>, param_count> host;
    for (int l = 0; l < convs; ++l) {
      const int64_t fan_in = channels[l] * 9;
      host[3 * l] = uniform(shape{channels[l + 1], channels[l], 3, 3}, 1.0f / std::sqrt(float(fan_in)));
      host[3 * l + 1] = constant(shape{channels[l + 1]}, 1.0f);
      host[3 * l + 2] = constant(shape{channels[l + 1]}, 0.0f);
    }
    host[head_w1] = uniform(shape{256, 256}, 1.0f / 16.0f);
    host[head_b1] = uniform(shape{256}, 1.0f / 16.0f);
    host[head_bn_w] = constant(shape{256}, 1.0f);
    host[head_bn_b] = constant(shape{256}, 0.0f);
    host[head_w2] = uniform(shape{128, 256}, 1.0f / 16.0f);
    host[head_b2] = uniform(shape{128}, 1.0f / 16.0f);
    for (int i = 0; i < param_count; ++i) {
      params_[size_t(i)].value = move_to_backend(host[size_t(i)]);
      params_[size_t(i)].grad = move_to_backend(constant(host[size_t(i)].shape(), 0.0f));
      momentum_[size_t(i)] = move_to_backend(constant(host[size_t(i)].shape(), 0.0f));
    }
    for (int l = 0; l <= convs; ++l) {
      const int64_t c = l < convs ? channels[l + 1] : 256;
      running_mean_[size_t(l)] = move_to_backend(constant(shape{c}, 0.0f));
      running_var_[size_t(l)] = move_to_backend(constant(shape{c}, 1.0f));
    }
    if constexpr (std::is_same_v<B, cpu>) {
      param_list<cpu> list;
      for (int i = 0; i < param_count; ++i) list.push_back({"p" + std::to_string(i), &params_[size_t(i)]});
      optimizer_ = std::make_unique<sgd<cpu>>(list, sgd_options{w1_lr, w1_momentum, w1_weight_decay, false});
    }
  }

  parameter<B>& param(int i) { return params_[size_t(i)]; }

  /// Sets parameter i (order: conv{l}.weight, bn{l}.weight, bn{l}.bias for l < 4, then head
  /// linear0 weight/bias, bn weight/bias, linear1 weight/bias: the order in which
  /// ssl::simclr<convnet_s, projection_mlp> collects its parameters) from a host tensor.
  void set_value(int i, const tensor<cpu>& v) {
    check<value_error>(i >= 0 && i < param_count, "convnet_simclr::set_value: parameter ", i, " not in [0, ",
                       int(param_count), ")");
    expect_shape(v, params_[size_t(i)].value.shape(), "convnet_simclr::set_value");
    params_[size_t(i)].value = move_to_backend(v);
  }

  /// Forward + loss + backward: zeroes the gradients first, leaves them in param(i).grad.
  /// x: (2N, 1, 28, 28), the two views stacked. Returns the loss (on B: a 1-element tensor).
  auto forward_backward(const tensor<B>& x) {
    for (auto& p : params_) zero(p.grad);
    // ---- forward
    for (int l = 0; l < convs; ++l) {
      const tensor<B>& in = l == 0 ? x : act_[size_t(l - 1)];
      ops::conv2d_forward(in, params_[size_t(3 * l)].value, nullptr, strides[l], 1, conv_[size_t(l)]);
      ops::batch_norm_forward_train(conv_[size_t(l)], params_[size_t(3 * l + 1)].value,
                                    params_[size_t(3 * l + 2)].value, bn_eps, true, act_[size_t(l)],
                                    mean_[size_t(l)], var_[size_t(l)], invstd_[size_t(l)]);
    }
    ops::global_avg_pool_forward(act_[convs - 1], feat_);
    hidden_ = ops::linear_forward(feat_, params_[head_w1].value, &params_[head_b1].value);
    ops::batch_norm_forward_train(hidden_, params_[head_bn_w].value, params_[head_bn_b].value, bn_eps, true, hact_,
                                  mean_[convs], var_[convs], invstd_[convs]);
    tensor<B> z = ops::linear_forward(hact_, params_[head_w2].value, &params_[head_b2].value);
    // ---- loss
    auto [loss, dz] = loss_and_grad(z);
    // ---- backward
    tensor<B> dhact = ops::linear_backward(hact_, params_[head_w2].value, dz, params_[head_w2].grad,
                                           &params_[head_b2].grad);
    tensor<B> dhidden;
    ops::batch_norm_backward_train(dhact, hidden_, mean_[convs], invstd_[convs], params_[head_bn_w].value,
                                   params_[head_bn_b].value, true, dhidden, params_[head_bn_w].grad,
                                   params_[head_bn_b].grad);
    tensor<B> dfeat = ops::linear_backward(feat_, params_[head_w1].value, dhidden, params_[head_w1].grad,
                                           &params_[head_b1].grad);
    tensor<B> dact, dconv;
    ops::global_avg_pool_backward(act_[convs - 1].shape(), dfeat, dact);
    for (int l = convs - 1; l >= 0; --l) {
      ops::batch_norm_backward_train(dact, conv_[size_t(l)], mean_[size_t(l)], invstd_[size_t(l)],
                                     params_[size_t(3 * l + 1)].value, params_[size_t(3 * l + 2)].value, true, dconv,
                                     params_[size_t(3 * l + 1)].grad, params_[size_t(3 * l + 2)].grad);
      const tensor<B>& in = l == 0 ? x : act_[size_t(l - 1)];
      ops::conv2d_backward(in, params_[size_t(3 * l)].value, dconv, strides[l], 1, l == 0 ? nullptr : &dact,
                           params_[size_t(3 * l)].grad, nullptr);
    }
    return loss;
  }

  /// SGD on every parameter (the library's ssl::sgd on the CPU, ops::sgd_update on the GPU)
  /// and the BN running statistics.
  void update() {
    if constexpr (std::is_same_v<B, cpu>) {
      optimizer_->step();
    } else {
      for (size_t i = 0; i < params_.size(); ++i)
        ops::sgd_update(params_[i].value, params_[i].grad, &momentum_[i], w1_lr, w1_momentum, w1_weight_decay);
    }
    for (int l = 0; l <= convs; ++l) {
      const tensor<B>& in = l < convs ? conv_[size_t(l)] : hidden_;
      const int64_t count = in.rank() == 4 ? in.dim(0) * in.dim(2) * in.dim(3) : in.dim(0);
      ops::batch_norm_update_running(running_mean_[size_t(l)], running_var_[size_t(l)], mean_[size_t(l)],
                                     var_[size_t(l)], count, bn_momentum);
    }
  }

  /// One training step; returns the loss (host float on the CPU, device tensor on the GPU).
  auto step(const tensor<B>& x) {
    auto loss = forward_backward(x);
    update();
    return loss;
  }

  const tensor<B>& running_mean(int l) const { return running_mean_[size_t(l)]; }

 private:
  static tensor<B> move_to_backend(tensor<cpu> t) {
    if constexpr (std::is_same_v<B, cpu>)
      return t;
    else
      return to_device(t);
  }
  static void zero(tensor<B>& t) {
    if constexpr (std::is_same_v<B, cpu>)
      t.zero();
    else
      ops::zero(t);
  }
  struct loss_grad {
    std::conditional_t<std::is_same_v<B, cpu>, float, tensor<cuda>> value;
    tensor<B> grad;
  };
  static loss_grad loss_and_grad(const tensor<B>& z) {
    if constexpr (std::is_same_v<B, cpu>) {
      nt_xent_result r = nt_xent(w1_temperature)(z);
      return {r.value, std::move(r.grad_z)};
    } else {
      ops::nt_xent_device_result r = ops::nt_xent(z, w1_temperature);
      return {std::move(r.value), std::move(r.grad_z)};
    }
  }

  std::array<parameter<B>, param_count> params_;
  std::array<tensor<B>, param_count> momentum_;
  std::array<tensor<B>, convs> conv_, act_;
  std::array<bn_stats<B>, convs + 1> mean_, var_, invstd_;
  std::array<tensor<B>, convs + 1> running_mean_, running_var_;
  tensor<B> feat_, hidden_, hact_;
  std::unique_ptr<sgd<cpu>> optimizer_;  // CPU only
};

}  // namespace ssl::parity
