#pragma once
// compose<A...>: the parts applied in order, out = a_n(... a_2(a_1(img, g), g) ..., g).
// The parts are compile-time types held in a tuple (no virtual calls), e.g.
//   compose pipeline{random_resized_crop{32, 32}, horizontal_flip{}, normalize{{0.5f}, {0.5f}}};
#include <tuple>
#include <utility>

#include "augmentation.hpp"

namespace ssl::augment {

template <class... As>
struct compose {
  static_assert(sizeof...(As) > 0, "ssl::augment::compose<...>: needs at least one part");
  static_assert((Augmentation<As> && ...),
                "ssl::augment::compose<...>: every part must be an ssl::Augmentation, i.e. const-callable as "
                "a(const ssl::tensor<ssl::cpu>& img, ssl::rng& g) -> ssl::tensor<ssl::cpu>");

  std::tuple<As...> parts;

  compose() = default;
  explicit compose(As... as) : parts(std::move(as)...) {}

  /// The I-th part, to read or change its settings.
  template <size_t I>
  auto& get() { return std::get<I>(parts); }
  template <size_t I>
  const auto& get() const { return std::get<I>(parts); }

  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const {
    return std::apply([&](const As&... as) { return run(img, g, as...); }, parts);
  }

 private:
  template <class First, class... Rest>
  static tensor<cpu> run(const tensor<cpu>& img, rng& g, const First& first, const Rest&... rest) {
    tensor<cpu> out = first(img, g);
    ((out = rest(out, g)), ...);
    return out;
  }
};

template <class... As>
compose(As...) -> compose<As...>;

}  // namespace ssl::augment
