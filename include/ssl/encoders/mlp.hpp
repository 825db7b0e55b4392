#pragma once
// mlp_encoder<B>: flatten, then [linear, relu] per hidden width.
//   x: (N, ...) with prod(...) = in_features  ->  (N, widths.back())
// E.g. mlp_encoder<>(784, {512, 256}) maps (N, 1, 28, 28) images to 256-d features.
// Layer i's parameters are named "layers.<i>.weight" / "layers.<i>.bias"; layer i is
// initialised from rng(seed).fork(i). Satisfies ssl::Encoder.
#include <string>
#include <utility>
#include <vector>

#include "../nn/flatten.hpp"
#include "../nn/linear.hpp"
#include "../nn/relu.hpp"

namespace ssl {

template <class B = cpu>
class mlp_encoder {
 public:
  using backend_type = B;
  struct saved_type {
    typename flatten<B>::saved_type flat;
    std::vector<typename linear<B>::saved_type> linears;
    std::vector<typename relu<B>::saved_type> relus;
  };

  mlp_encoder() = default;
  mlp_encoder(int64_t in_features, const std::vector<int64_t>& widths, uint64_t seed = 0) : in_features_(in_features) {
    check<value_error>(in_features > 0, "mlp_encoder: expected positive in_features, got ", in_features);
    check<value_error>(!widths.empty(), "mlp_encoder: expected at least one hidden width, got none");
    const rng base(seed);
    int64_t prev = in_features;
    for (size_t i = 0; i < widths.size(); ++i) {
      layers_.emplace_back(prev, widths[i], true, base.fork(i));
      prev = widths[i];
    }
  }

  int64_t in_features() const { return in_features_; }
  int64_t feature_dim() const { return layers_.empty() ? 0 : layers_.back().out_features(); }
  size_t depth() const { return layers_.size(); }
  linear<B>& layer(size_t i) { return layers_.at(i); }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    output<saved_type, B> out;
    auto f = flatten_.forward(x);
    out.saved.flat = std::move(f.saved);
    tensor<B> h = std::move(f.y);
    for (auto& l : layers_) {
      auto a = l.forward(std::move(h));  // h is reassigned below: hand it to the saved state
      out.saved.linears.push_back(std::move(a.saved));
      auto r = relu_.forward(a.y);
      out.saved.relus.push_back(std::move(r.saved));
      h = std::move(r.y);
    }
    out.y = std::move(h);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    check<shape_error>(s.linears.size() == layers_.size(),
                       "mlp_encoder::backward: saved state of ", s.linears.size(), " layers, expected ", layers_.size());
    tensor<B> g = dy;
    for (size_t i = layers_.size(); i-- > 0;) {
      g = relu_.backward(s.relus[i], g);
      g = layers_[i].backward(s.linears[i], g);
    }
    return flatten_.backward(s.flat, g);
  }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    tensor<B> h = flatten_.infer(x);
    for (const auto& l : layers_) h = relu_.infer(l.infer(h));
    return h;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    for (size_t i = 0; i < layers_.size(); ++i)
      layers_[i].collect(out, join_name(prefix, "layers." + std::to_string(i)));
  }

 private:
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() >= 2 && x.numel() == x.dim(0) * in_features_, "mlp_encoder: expected input (N, ...) with ",
                       in_features_, " features per sample, got shape ", x.shape());
  }

  int64_t in_features_ = 0;
  flatten<B> flatten_;
  relu<B> relu_;
  std::vector<linear<B>> layers_;
};

}  // namespace ssl
