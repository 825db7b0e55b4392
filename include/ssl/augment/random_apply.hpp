#pragma once
// random_apply<A>: applies the wrapped augmentation with probability p, else returns the image
// (torchvision RandomApply / RandomGrayscale(p) / RandomSolarize(p)). The coin is drawn first, and
// the wrapped augmentation draws its parameters only when it runs.
#include <utility>

#include "augmentation.hpp"

namespace ssl::augment {

template <class A>
struct random_apply {
  static_assert(Augmentation<A>,
                "ssl::augment::random_apply<A>: A must be an ssl::Augmentation, i.e. const-callable as "
                "a(const ssl::tensor<ssl::cpu>& img, ssl::rng& g) -> ssl::tensor<ssl::cpu>");
  float p = 0.5f;
  A inner{};

  random_apply() = default;
  random_apply(float prob, A a) : p(prob), inner(std::move(a)) {}

  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const {
    check<value_error>(p >= 0 && p <= 1, "random_apply: expected a probability in [0, 1], got ", p);
    if (p <= 0 || !g.bernoulli(p)) return img;
    return inner(img, g);
  }
};

template <class A>
random_apply(float, A) -> random_apply<A>;

}  // namespace ssl::augment
