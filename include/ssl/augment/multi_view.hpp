#pragma once
// View policies: what the data loader consumes, (img, g) -> std::vector<tensor<cpu>>.
//   multi_view<A>{n, a}:            n views, each independently augmented by a (SimCLR, MoCo: n = 2)
//   asymmetric_views<A...>{a, b}:   one view per part, view i by part i (BYOL's two policies)
// Views are drawn one after another from the same stream g.
#include <tuple>
#include <utility>
#include <vector>

#include "augmentation.hpp"

namespace ssl::augment {

template <class A>
struct multi_view {
  static_assert(Augmentation<A>,
                "ssl::augment::multi_view<A>: A must be an ssl::Augmentation, i.e. const-callable as "
                "a(const ssl::tensor<ssl::cpu>& img, ssl::rng& g) -> ssl::tensor<ssl::cpu>");
  int views = 2;
  A augmentation{};

  multi_view() = default;
  multi_view(int n, A a) : views(n), augmentation(std::move(a)) {}

  std::vector<tensor<cpu>> operator()(const tensor<cpu>& img, rng& g) const {
    check<value_error>(views > 0, "multi_view: expected a positive number of views, got ", views);
    std::vector<tensor<cpu>> out;
    out.reserve(size_t(views));
    for (int v = 0; v < views; ++v) out.push_back(augmentation(img, g));
    return out;
  }
};

template <class A>
multi_view(int, A) -> multi_view<A>;

template <class... As>
struct asymmetric_views {
  static_assert(sizeof...(As) > 0, "ssl::augment::asymmetric_views<...>: needs at least one part");
  static_assert((Augmentation<As> && ...),
                "ssl::augment::asymmetric_views<...>: every part must be an ssl::Augmentation, i.e. const-callable "
                "as a(const ssl::tensor<ssl::cpu>& img, ssl::rng& g) -> ssl::tensor<ssl::cpu>");
  std::tuple<As...> parts;

  asymmetric_views() = default;
  explicit asymmetric_views(As... as) : parts(std::move(as)...) {}

  template <size_t I>
  auto& get() { return std::get<I>(parts); }
  template <size_t I>
  const auto& get() const { return std::get<I>(parts); }

  std::vector<tensor<cpu>> operator()(const tensor<cpu>& img, rng& g) const {
    std::vector<tensor<cpu>> out;
    out.reserve(sizeof...(As));
    std::apply([&](const As&... as) { (out.push_back(as(img, g)), ...); }, parts);
    return out;
  }
};

template <class... As>
asymmetric_views(As...) -> asymmetric_views<As...>;

}  // namespace ssl::augment
