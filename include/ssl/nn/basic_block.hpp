#pragma once
// basic_block<B>: the residual block of ResNet-18/34 (torchvision BasicBlock).
//   x (N, C_in, H, W) -> y (N, C_out, H / s, W / s)
//   main:     conv3x3(C_in -> C_out, stride s, pad 1, no bias) - BN - ReLU - conv3x3(C_out -> C_out) - BN
//   shortcut: identity, or conv1x1(C_in -> C_out, stride s, no bias) - BN when s != 1 or C_in != C_out
//   y = ReLU(main(x) + shortcut(x))
// Parameter names follow torchvision: conv1, bn1, conv2, bn2, downsample.0 (conv), downsample.1 (BN).
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/residual.hpp"
#include "../backend/cpu/vit_ops.hpp"  // add_range
#include "batch_norm.hpp"
#include "conv2d.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/tokens.cuh"  // add_relu_inplace and its backward on tensor<cuda>
#include "../backend/cuda/vit_ops.cuh"  // add_range
#endif

namespace ssl {

template <class B = cpu>
class basic_block {
 public:
  using backend_type = B;
  struct saved_type {
    typename conv2d<B>::saved_type conv1;  // the block's input x, shared with the shortcut conv
    typename batch_norm<B>::saved_type bn1, bn2, down_bn;
    typename conv2d<B>::saved_type conv2;
    tensor<B> y;  // the block's output, for the final ReLU's mask
  };

  basic_block() = default;
  basic_block(int64_t in_channels, int64_t out_channels, int64_t stride = 1, rng gen = rng(0))
      : conv1_({.in_channels = in_channels, .out_channels = out_channels, .kernel = 3, .stride = stride, .padding = 1,
                .bias = false},
               gen.fork(1)),
        bn1_({.channels = out_channels, .relu = true}),
        conv2_({.in_channels = out_channels, .out_channels = out_channels, .kernel = 3, .stride = 1, .padding = 1,
                .bias = false},
               gen.fork(2)),
        bn2_(out_channels),
        has_downsample_(stride != 1 || in_channels != out_channels) {
    if (has_downsample_) {
      down_conv_ = conv2d<B>({.in_channels = in_channels, .out_channels = out_channels, .kernel = 1, .stride = stride,
                              .padding = 0, .bias = false},
                             gen.fork(3));
      down_bn_ = batch_norm<B>(out_channels);
    }
  }

  bool has_downsample() const { return has_downsample_; }
  int64_t in_channels() const { return conv1_.options().in_channels; }
  int64_t out_channels() const { return conv1_.options().out_channels; }

  output<saved_type, B> forward(const tensor<B>& x) {
    output<saved_type, B> out;
    auto c1 = conv1_.forward(x);
    auto b1 = bn1_.forward(std::move(c1.y));
    auto c2 = conv2_.forward(std::move(b1.y));
    auto b2 = bn2_.forward(std::move(c2.y));
    out.y = std::move(b2.y);
    if (has_downsample_) {
      auto d = down_bn_.forward(down_conv_.infer(x));
      ops::add_relu_inplace(out.y, d.y);
      out.saved.down_bn = std::move(d.saved);
    } else {
      ops::add_relu_inplace(out.y, x);
    }
    out.saved.conv1 = std::move(c1.saved);
    out.saved.bn1 = std::move(b1.saved);
    out.saved.conv2 = std::move(c2.saved);
    out.saved.bn2 = std::move(b2.saved);
    out.saved.y = out.y;
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> g = dy;
    ops::add_relu_backward_inplace(s.y, g);
    tensor<B> dx = conv1_.backward(s.conv1, bn1_.backward(s.bn1, conv2_.backward(s.conv2, bn2_.backward(s.bn2, g))));
    if (has_downsample_) {
      const tensor<B> ds = down_conv_.backward(s.conv1, down_bn_.backward(s.down_bn, g));
      accumulate(dx, ds);
    } else {
      accumulate(dx, g);
    }
    return dx;
  }

  tensor<B> infer(const tensor<B>& x) const {
    tensor<B> y = bn2_.infer(conv2_.infer(bn1_.infer(conv1_.infer(x))));
    if (has_downsample_)
      ops::add_relu_inplace(y, down_bn_.infer(down_conv_.infer(x)));
    else
      ops::add_relu_inplace(y, x);
    return y;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    conv1_.collect(out, join_name(prefix, "conv1"));
    bn1_.collect(out, join_name(prefix, "bn1"));
    conv2_.collect(out, join_name(prefix, "conv2"));
    bn2_.collect(out, join_name(prefix, "bn2"));
    if (has_downsample_) {
      down_conv_.collect(out, join_name(prefix, "downsample.0"));
      down_bn_.collect(out, join_name(prefix, "downsample.1"));
    }
  }

  void collect_buffers(std::vector<std::pair<std::string, tensor<B>*>>& out, const std::string& prefix) {
    bn1_.collect_buffers(out, join_name(prefix, "bn1"));
    bn2_.collect_buffers(out, join_name(prefix, "bn2"));
    if (has_downsample_) down_bn_.collect_buffers(out, join_name(prefix, "downsample.1"));
  }

  /// Calls f(batch_norm<B>&) on every BN of the block (momentum changes, running-stat resets).
  template <class F>
  void for_each_batch_norm(F&& f) {
    f(bn1_);
    f(bn2_);
    if (has_downsample_) f(down_bn_);
  }

 private:
  // y += x elementwise (same shapes): Eigen on the CPU, one kernel on the device.
  static void accumulate(tensor<B>& y, const tensor<B>& x) {
    if constexpr (std::same_as<B, cpu>)
      y.vec() += x.vec();
    else
      ops::add_range(y, 0, x, 0, x.numel());
  }

  conv2d<B> conv1_;
  batch_norm<B> bn1_;  // fused with the ReLU that follows it
  conv2d<B> conv2_;
  batch_norm<B> bn2_;
  bool has_downsample_ = false;
  conv2d<B> down_conv_;
  batch_norm<B> down_bn_;
};

}  // namespace ssl
