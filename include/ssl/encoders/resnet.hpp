#pragma once
// resnet<B>: ResNet with basic blocks (ResNet-18 by default), x (N, C_in, H, W) -> features (N, 512),
// torchvision's architecture without the fc layer.
//   stem (imagenet): conv7x7 C_in->64 stride 2 pad 3, BN, ReLU, max-pool 3x3 stride 2 pad 1
//   stem (cifar):    conv3x3 C_in->64 stride 1 pad 1, BN, ReLU (no max-pool; SimCLR's CIFAR variant)
//   layer1..layer4: blocks[i] basic blocks of width 64, 128, 256, 512; the first block of
//                   layer2..4 has stride 2 (and a 1x1 conv + BN shortcut)
//   global average pool -> 512
// Parameter names follow torchvision ("conv1.weight", "bn1.bias", "layer2.0.downsample.0.weight" ...).
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "../nn/basic_block.hpp"
#include "../nn/global_avg_pool.hpp"
#include "../nn/max_pool2d.hpp"

namespace ssl {

enum class resnet_stem { imagenet, cifar };

struct resnet_options {
  resnet_stem stem = resnet_stem::cifar;
  int64_t in_channels = 3;
  std::array<int, 4> blocks{2, 2, 2, 2};  // ResNet-18; {3, 4, 6, 3} gives ResNet-34
};

template <class B = cpu>
class resnet {
 public:
  using backend_type = B;
  static constexpr std::array<int64_t, 4> widths{64, 128, 256, 512};

  struct saved_type {
    typename conv2d<B>::saved_type conv1;
    typename batch_norm<B>::saved_type bn1;
    typename max_pool2d<B>::saved_type pool1;
    std::vector<typename basic_block<B>::saved_type> blocks;
    typename global_avg_pool<B>::saved_type pool;
  };

  explicit resnet(const resnet_options& o = {}, rng gen = rng(0)) : opt_(o) {
    check<value_error>(o.in_channels >= 1, "resnet: expected in_channels >= 1, got ", o.in_channels);
    const bool imagenet = o.stem == resnet_stem::imagenet;
    conv1_ = conv2d<B>({.in_channels = o.in_channels, .out_channels = 64, .kernel = imagenet ? 7 : 3,
                        .stride = imagenet ? 2 : 1, .padding = imagenet ? 3 : 1, .bias = false},
                       gen.fork(0));
    bn1_ = batch_norm<B>({.channels = 64, .relu = true});
    maxpool_ = max_pool2d<B>(3, 2, 1);
    int64_t c = 64;
    for (int stage = 0; stage < 4; ++stage) {
      check<value_error>(o.blocks[stage] >= 1, "resnet: expected >= 1 block per stage, got ", o.blocks[stage],
                         " in layer", stage + 1);
      for (int j = 0; j < o.blocks[stage]; ++j) {
        const int64_t stride = (stage > 0 && j == 0) ? 2 : 1;
        blocks_.emplace_back(c, widths[stage], stride, gen.fork(uint64_t(100 * (stage + 1) + j)));
        names_.push_back("layer" + std::to_string(stage + 1) + "." + std::to_string(j));
        c = widths[stage];
      }
    }
  }

  const resnet_options& options() const { return opt_; }
  int64_t feature_dim() const { return widths.back(); }
  basic_block<B>& block(size_t i) { return blocks_[i]; }

  /// Layer ids for layer-wise lr decay: 0 the stem (conv1.*, bn1.*), s the stage layer<s>.* (1..4).
  int64_t layer_count() const { return 5; }
  int64_t layer_of(const std::string& name) const {
    if (name.starts_with("conv1.") || name.starts_with("bn1.")) return 0;
    for (size_t i = 0; i < names_.size(); ++i)
      if (name.size() > names_[i].size() && name.starts_with(names_[i]) && name[names_[i].size()] == '.')
        return names_[i][5] - '0';  // "layer<s>.<j>"
    check<value_error>(false, "resnet::layer_of: expected a parameter name of this ResNet (conv1.*, bn1.*, "
                              "layer<1..4>.<j>.*), got '", name, "'");
    return -1;
  }
  size_t num_blocks() const { return blocks_.size(); }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    output<saved_type, B> out;
    auto c = conv1_.forward(x);
    auto b = bn1_.forward(std::move(c.y));
    out.saved.conv1 = std::move(c.saved);
    out.saved.bn1 = std::move(b.saved);
    tensor<B> h = std::move(b.y);
    if (opt_.stem == resnet_stem::imagenet) {
      auto p = maxpool_.forward(h);
      out.saved.pool1 = std::move(p.saved);
      h = std::move(p.y);
    }
    out.saved.blocks.resize(blocks_.size());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto o = blocks_[i].forward(h);
      out.saved.blocks[i] = std::move(o.saved);
      h = std::move(o.y);
    }
    auto p = pool_.forward(h);
    out.saved.pool = std::move(p.saved);
    out.y = std::move(p.y);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    check<shape_error>(s.blocks.size() == blocks_.size(), "resnet backward: expected saved state of ", blocks_.size(),
                       " blocks, got ", s.blocks.size());
    tensor<B> g = pool_.backward(s.pool, dy);
    for (size_t i = blocks_.size(); i-- > 0;) g = blocks_[i].backward(s.blocks[i], g);
    if (opt_.stem == resnet_stem::imagenet) g = maxpool_.backward(s.pool1, g);
    return conv1_.backward(s.conv1, bn1_.backward(s.bn1, g));
  }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    tensor<B> h = bn1_.infer(conv1_.infer(x));
    if (opt_.stem == resnet_stem::imagenet) h = maxpool_.infer(h);
    for (const auto& blk : blocks_) h = blk.infer(h);
    return pool_.infer(h);
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    conv1_.collect(out, join_name(prefix, "conv1"));
    bn1_.collect(out, join_name(prefix, "bn1"));
    for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i].collect(out, join_name(prefix, names_[i]));
  }

  void collect_buffers(std::vector<std::pair<std::string, tensor<B>*>>& out, const std::string& prefix) {
    bn1_.collect_buffers(out, join_name(prefix, "bn1"));
    for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i].collect_buffers(out, join_name(prefix, names_[i]));
  }

  template <class F>
  void for_each_batch_norm(F&& f) {
    f(bn1_);
    for (auto& blk : blocks_) blk.for_each_batch_norm(f);
  }

 private:
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 4 && x.dim(1) == opt_.in_channels, "resnet: expected input (N, ", opt_.in_channels,
                       ", H, W), got shape ", x.shape());
  }

  resnet_options opt_;
  conv2d<B> conv1_;
  batch_norm<B> bn1_;  // fused with the stem's ReLU
  max_pool2d<B> maxpool_;
  std::vector<basic_block<B>> blocks_;
  std::vector<std::string> names_;
  global_avg_pool<B> pool_;
};

/// ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool).
template <class B = cpu>
resnet<B> resnet18_cifar(int64_t in_channels = 3, rng gen = rng(0)) {
  return resnet<B>({.stem = resnet_stem::cifar, .in_channels = in_channels}, gen);
}
/// ResNet-18 with the ImageNet stem (7x7 conv, stride 2, 3x3 max-pool stride 2).
template <class B = cpu>
resnet<B> resnet18_imagenet(int64_t in_channels = 3, rng gen = rng(0)) {
  return resnet<B>({.stem = resnet_stem::imagenet, .in_channels = in_channels}, gen);
}

}  // namespace ssl
