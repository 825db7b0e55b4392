#pragma once
// convnet_s<B>: the ConvNet-S encoder of shared/WORKLOADS.md, x (N, C_in, H, W) -> features (N, 256).
//   stage 1: conv3x3 C_in->32,  stride 1, pad 1, no bias; BN(32);  ReLU   (28x28 -> 32x28x28)
//   stage 2: conv3x3 32->64,    stride 2, pad 1, no bias; BN(64);  ReLU   (-> 64x14x14)
//   stage 3: conv3x3 64->128,   stride 2, pad 1, no bias; BN(128); ReLU   (-> 128x7x7)
//   stage 4: conv3x3 128->256,  stride 2, pad 1, no bias; BN(256); ReLU   (-> 256x4x4)
//   global average pool -> 256
// 388,320 parameters for C_in = 1. Any spatial size works (12x12 crops give 256x2x2 before the pool).
// Parameter names are those of the PyTorch nn.Sequential(conv, bn, relu, conv, bn, relu, ...):
// stage i's conv is "<3i>.weight", its BN "<3i+1>.weight" / "<3i+1>.bias" (buffers likewise), so a
// state dict of that PyTorch model maps one-to-one. BN and ReLU run as one fused pass.
#include <array>
#include <charconv>
#include <string>
#include <utility>
#include <vector>

#include "../nn/batch_norm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/global_avg_pool.hpp"

namespace ssl {

template <class B = cpu>
class convnet_s {
 public:
  using backend_type = B;
  static constexpr int stages = 4;
  static constexpr std::array<int64_t, stages> widths{32, 64, 128, 256};
  static constexpr std::array<int64_t, stages> strides{1, 2, 2, 2};

  struct saved_type {
    std::array<typename conv2d<B>::saved_type, stages> conv;
    std::array<typename batch_norm<B>::saved_type, stages> bn;
    typename global_avg_pool<B>::saved_type pool;
  };

  explicit convnet_s(int64_t in_channels = 1, rng gen = rng(0)) {
    int64_t c = in_channels;
    for (int i = 0; i < stages; ++i) {
      conv_[i] = conv2d<B>({.in_channels = c, .out_channels = widths[i], .kernel = 3, .stride = strides[i],
                            .padding = 1, .bias = false},
                           gen.fork(uint64_t(i)));
      bn_[i] = batch_norm<B>({.channels = widths[i], .relu = true});
      c = widths[i];
    }
  }

  int64_t feature_dim() const { return widths.back(); }
  int64_t in_channels() const { return conv_[0].options().in_channels; }
  conv2d<B>& conv(int i) { return conv_[size_t(i)]; }
  batch_norm<B>& bn(int i) { return bn_[size_t(i)]; }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    output<saved_type, B> out;
    tensor<B> h;
    for (int i = 0; i < stages; ++i) {
      auto c = i == 0 ? conv_[i].forward(x) : conv_[i].forward(std::move(h));
      auto b = bn_[i].forward(std::move(c.y));
      out.saved.conv[i] = std::move(c.saved);
      out.saved.bn[i] = std::move(b.saved);
      h = std::move(b.y);
    }
    auto p = pool_.forward(h);
    out.saved.pool = std::move(p.saved);
    out.y = std::move(p.y);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> g = pool_.backward(s.pool, dy);
    for (int i = stages - 1; i >= 0; --i) g = conv_[i].backward(s.conv[i], bn_[i].backward(s.bn[i], g));
    return g;
  }

  /// The same gradients, consuming the saved state: each stage's saved activations are released
  /// as soon as its backward has run (as PyTorch frees a node's saved tensors), so the step's peak
  /// memory is the activations still needed plus one stage's gradients, not all of both. A caller
  /// opts in with backward(std::move(saved), dy).
  tensor<B> backward(saved_type&& s, const tensor<B>& dy) { return backward_consuming(s, dy, true); }

  /// Parameter gradients only, consuming the saved state as backward(saved_type&&, dy) does; the
  /// input's gradient (the images') is not computed, which saves the first convolution's dx
  /// product and col2im. Methods whose inputs are data call this when the encoder has it.
  void backward_params(saved_type&& s, const tensor<B>& dy) { backward_consuming(s, dy, false); }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    tensor<B> h = bn_[0].infer(conv_[0].infer(x));
    for (int i = 1; i < stages; ++i) h = bn_[i].infer(conv_[i].infer(h));
    return pool_.infer(h);
  }

  /// Layer ids for layer-wise lr decay: stage i (its conv "3i.*" and BN "3i+1.*") is layer i.
  int64_t layer_count() const { return stages; }
  int64_t layer_of(const std::string& name) const {
    const size_t dot = name.find('.');
    int64_t k = -1;
    if (dot != std::string::npos) {
      const auto r = std::from_chars(name.data(), name.data() + dot, k);
      if (r.ec == std::errc() && r.ptr == name.data() + dot && k >= 0 && k < 3 * stages && k % 3 != 2) return k / 3;
    }
    check<value_error>(false, "convnet_s::layer_of: expected a parameter name of ConvNet-S (<3i or 3i+1>.*, i < ",
                       stages, "), got '", name, "'");
    return -1;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    for (int i = 0; i < stages; ++i) {
      conv_[i].collect(out, join_name(prefix, std::to_string(3 * i)));
      bn_[i].collect(out, join_name(prefix, std::to_string(3 * i + 1)));
    }
  }

  void collect_buffers(std::vector<std::pair<std::string, tensor<B>*>>& out, const std::string& prefix) {
    for (int i = 0; i < stages; ++i) bn_[i].collect_buffers(out, join_name(prefix, std::to_string(3 * i + 1)));
  }

  template <class F>
  void for_each_batch_norm(F&& f) {
    for (auto& b : bn_) f(b);
  }

 private:
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 4 && x.dim(1) == in_channels(), "convnet_s: expected input (N, ", in_channels(),
                       ", H, W), got shape ", x.shape());
  }

  /// The stages' backward in reverse, releasing each stage's saved tensors once used; the first
  /// convolution's dx only when `input_grad` (otherwise the returned tensor is empty).
  tensor<B> backward_consuming(saved_type& s, const tensor<B>& dy, bool input_grad) {
    tensor<B> g = pool_.backward(s.pool, dy);
    s.pool = {};
    for (int i = stages - 1; i >= 0; --i) {
      // In place: BN's gradient overwrites g; the convolution releases its input before
      // allocating dx. So each activation size has at most two live tensors (stage i's BN input
      // and the gradient), where the non-consuming path has four.
      tensor<B> g_bn = bn_[i].backward(s.bn[i], std::move(g));
      s.bn[i] = {};
      g = tensor<B>();
      if (i > 0 || input_grad)
        g = conv_[i].backward(std::move(s.conv[i]), g_bn);
      else
        conv_[i].backward_params(s.conv[i], g_bn);
      s.conv[i] = {};
    }
    return g;
  }

  std::array<conv2d<B>, stages> conv_;
  std::array<batch_norm<B>, stages> bn_;
  global_avg_pool<B> pool_;
};

}  // namespace ssl
