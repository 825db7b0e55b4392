// Data-parallel sharding of the loader: at every step the ranks' batches are disjoint and together
// are exactly the single-process batch of size B W (same images, same augmented pixels).
#include <catch2/catch.hpp>
#include <ssl/data/loader.hpp>
#include <vector>

using namespace ssl;

namespace {
struct noisy_view {
  std::vector<tensor<cpu>> operator()(const tensor<cpu>& img, rng& g) const {
    tensor<cpu> v = img;
    for (int64_t i = 0; i < v.numel(); ++i) v[i] += g.normal();
    return {v};
  }
};
data::in_memory_dataset numbered(int64_t n) {
  tensor<cpu> x(shape{n, 1, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i);
  return data::in_memory_dataset(std::move(x));
}
}  // namespace

TEST_CASE("sharded loaders split every global batch into the ranks' slices") {
  const auto d = numbered(50);
  const int W = 3;
  const int64_t B = 4;
  data::loader single(d, noisy_view{}, {.batch_size = B * W, .num_workers = 0, .seed = 9});
  std::vector<std::unique_ptr<data::loader<data::in_memory_dataset, noisy_view>>> ranks;
  for (int r = 0; r < W; ++r)
    ranks.push_back(std::make_unique<data::loader<data::in_memory_dataset, noisy_view>>(
        d, noisy_view{}, data::loader_options{.batch_size = B, .num_workers = r % 2 * 2, .seed = 9, .rank = r, .world_size = W}));
  REQUIRE(single.steps_per_epoch() == 4);  // floor(50 / 12)
  for (int epoch = 0; epoch < 2; ++epoch) {
    single.start(epoch);
    for (auto& l : ranks) {
      CHECK(l->steps_per_epoch() == 4);
      l->start(epoch);
    }
    for (int64_t s = 0; s < 4; ++s) {
      const auto whole = single.next();
      REQUIRE(whole);
      for (int r = 0; r < W; ++r) {
        const auto part = ranks[size_t(r)]->next();
        REQUIRE(part);
        REQUIRE(part->size() == B);
        for (int64_t j = 0; j < B; ++j) {
          CHECK(part->indices[size_t(j)] == whole->indices[size_t(r * B + j)]);
          for (int64_t k = 0; k < 4; ++k) CHECK(part->views[0][j * 4 + k] == whole->views[0][(r * B + j) * 4 + k]);
        }
      }
    }
    CHECK_FALSE(single.next());
    for (auto& l : ranks) CHECK_FALSE(l->next());
  }
}

TEST_CASE("sharded loaders reject bad rank settings") {
  const auto d = numbered(10);
  using L = data::loader<data::in_memory_dataset, noisy_view>;
  CHECK_THROWS_AS(L(d, noisy_view{}, {.batch_size = 2, .rank = 2, .world_size = 2}), value_error);
  CHECK_THROWS_AS(L(d, noisy_view{}, {.batch_size = 2, .rank = -1, .world_size = 2}), value_error);
  CHECK_THROWS_AS(L(d, noisy_view{}, {.batch_size = 2, .world_size = 0}), value_error);
  CHECK_THROWS_WITH(L(d, noisy_view{}, {.batch_size = 2, .drop_last = false, .rank = 0, .world_size = 2}),
                    Catch::Contains("drop_last"));
}
