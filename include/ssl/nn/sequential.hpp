#pragma once
// sequential<M1, ..., Mn>: compile-time composition y = Mn(...M2(M1(x))).
// saved_type is the tuple of the layers' saved states, so the composed module
// keeps the "activations belong to the call" contract of its parts.
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "module.hpp"

namespace ssl {

template <class... Ms>
class sequential {
  static_assert(sizeof...(Ms) > 0, "ssl::sequential needs at least one layer");
  static_assert((Module<Ms> && ...),
                "ssl::sequential<...>: every layer must satisfy ssl::Module (forward/backward/infer/collect; see "
                "nn/module.hpp)");
  using first_t = std::tuple_element_t<0, std::tuple<Ms...>>;

 public:
  using backend_type = typename first_t::backend_type;
  static_assert((std::same_as<typename Ms::backend_type, backend_type> && ...),
                "ssl::sequential<...>: all layers must use the same backend tag");
  using saved_type = std::tuple<typename Ms::saved_type...>;
  static constexpr size_t size = sizeof...(Ms);

  sequential() = default;
  explicit sequential(Ms... ms) : layers_(std::move(ms)...) {}

  template <size_t I>
  auto& get() { return std::get<I>(layers_); }
  template <size_t I>
  const auto& get() const { return std::get<I>(layers_); }

  output<saved_type, backend_type> forward(const tensor<backend_type>& x) {
    output<saved_type, backend_type> out;
    out.y = x;
    forward_from<0>(out.y, out.saved);
    return out;
  }

  tensor<backend_type> backward(const saved_type& s, const tensor<backend_type>& dy) {
    tensor<backend_type> g = dy;
    backward_from<size - 1>(s, g);
    return g;
  }

  tensor<backend_type> infer(const tensor<backend_type>& x) const {
    tensor<backend_type> y = x;
    infer_from<0>(y);
    return y;
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    collect_from<0>(out, prefix);
  }

  /// Non-trainable state (BN running statistics ...) of the layers that have `collect_buffers`.
  void collect_buffers(std::vector<std::pair<std::string, tensor<backend_type>*>>& out, const std::string& prefix) {
    collect_buffers_from<0>(out, prefix);
  }

 private:
  template <size_t I>
  void forward_from(tensor<backend_type>& x, saved_type& s) {
    if constexpr (I < size) {
      auto o = std::get<I>(layers_).forward(std::move(x));  // layers with a forward(tensor&&) overload keep it without a copy
      std::get<I>(s) = std::move(o.saved);
      x = std::move(o.y);
      forward_from<I + 1>(x, s);
    }
  }
  template <size_t I>
  void backward_from(const saved_type& s, tensor<backend_type>& g) {
    g = std::get<I>(layers_).backward(std::get<I>(s), g);
    if constexpr (I > 0) backward_from<I - 1>(s, g);
  }
  template <size_t I>
  void infer_from(tensor<backend_type>& x) const {
    if constexpr (I < size) {
      x = std::get<I>(layers_).infer(x);
      infer_from<I + 1>(x);
    }
  }
  template <size_t I>
  void collect_from(param_list<backend_type>& out, const std::string& prefix) {
    if constexpr (I < size) {
      std::get<I>(layers_).collect(out, join_name(prefix, std::to_string(I)));
      collect_from<I + 1>(out, prefix);
    }
  }

  template <size_t I>
  void collect_buffers_from(std::vector<std::pair<std::string, tensor<backend_type>*>>& out,
                            const std::string& prefix) {
    if constexpr (I < size) {
      auto& layer = std::get<I>(layers_);
      if constexpr (requires { layer.collect_buffers(out, prefix); })
        layer.collect_buffers(out, join_name(prefix, std::to_string(I)));
      collect_buffers_from<I + 1>(out, prefix);
    }
  }

  std::tuple<Ms...> layers_;
};

}  // namespace ssl
