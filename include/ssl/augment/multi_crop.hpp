#pragma once
// multi_crop<G, L>: global views then local views of one image (SwAV / DINO multi-crop).
// Each of G and L is either a ViewPolicy (its views are used as they come, e.g.
// asymmetric_views for DINO's two differently augmented global crops) or an Augmentation
// (applied n_global / n_local times). Global and local crops usually differ in size
// (e.g. 28 px and 12 px), so views of one call need not share a shape; the first
// `global_count()` views are the global ones.
#include <utility>
#include <vector>

#include "augmentation.hpp"

namespace ssl::augment {

template <class G, class L>
struct multi_crop {
  static_assert(Augmentation<G> || ViewPolicy<G>,
                "ssl::augment::multi_crop<G, L>: G (global crops) must be an ssl::Augmentation or an ssl::ViewPolicy");
  static_assert(Augmentation<L> || ViewPolicy<L>,
                "ssl::augment::multi_crop<G, L>: L (local crops) must be an ssl::Augmentation or an ssl::ViewPolicy");
  G global{};
  L local{};
  int n_global = 2;  // used when G is an Augmentation
  int n_local = 6;   // used when L is an Augmentation

  multi_crop() = default;
  multi_crop(G g, int ng, L l, int nl) : global(std::move(g)), local(std::move(l)), n_global(ng), n_local(nl) {}

  std::vector<tensor<cpu>> operator()(const tensor<cpu>& img, rng& g) const {
    check<value_error>(n_global >= 0 && n_local >= 0, "multi_crop: expected non-negative crop counts, got ", n_global,
                       " global and ", n_local, " local");
    std::vector<tensor<cpu>> out;
    append(out, global, n_global, img, g);
    append(out, local, n_local, img, g);
    return out;
  }

 private:
  template <class P>
  static void append(std::vector<tensor<cpu>>& out, const P& part, int n, const tensor<cpu>& img, rng& g) {
    if constexpr (Augmentation<P>) {
      for (int i = 0; i < n; ++i) out.push_back(part(img, g));
    } else {
      for (auto& v : part(img, g)) out.push_back(std::move(v));
    }
  }
};

template <class G, class L>
multi_crop(G, int, L, int) -> multi_crop<G, L>;

}  // namespace ssl::augment
