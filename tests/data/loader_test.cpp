#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <ssl/data/loader.hpp>

#include "error_message.hpp"

using namespace ssl::data;
using ssl::cpu;
using ssl::tensor;

namespace {
// N images (1, 4, 4): image i holds i / N everywhere plus a small ramp; label i % 3.
in_memory_dataset toy(int64_t n) {
  tensor<cpu> images(ssl::shape{n, 1, 4, 4});
  for (int64_t i = 0; i < images.numel(); ++i) images[i] = float(i / 16) / float(n) + float(i % 16) * 1e-3f;
  std::vector<int> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[size_t(i)] = int(i % 3);
  return in_memory_dataset(std::move(images), std::move(labels), 3);
}

// Two views of different sizes, both random: a noisy copy (1, 4, 4) and a random 2x2 crop.
struct noisy_two_views {
  std::vector<tensor<cpu>> operator()(const tensor<cpu>& x, ssl::rng& g) const {
    tensor<cpu> a = x;
    for (int64_t k = 0; k < a.numel(); ++k) a[k] += g.normal(0.0f, 0.1f);
    const int64_t y0 = g.below(3), x0 = g.below(3);
    tensor<cpu> b(ssl::shape{1, 2, 2});
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t xx = 0; xx < 2; ++xx) b.at(0, y, xx) = x.at(0, y0 + y, x0 + xx);
    return {a, b};
  }
};

std::vector<batch> run_epoch(loader<in_memory_dataset, noisy_two_views>& ld, int64_t epoch, int64_t step = 0) {
  std::vector<batch> out;
  for (batch& b : ld.epoch(epoch, step)) out.push_back(std::move(b));
  return out;
}

bool same(const batch& a, const batch& b) {
  if (a.indices != b.indices || a.labels != b.labels || a.views.size() != b.views.size()) return false;
  for (size_t v = 0; v < a.views.size(); ++v)
    if (a.views[v].shape() != b.views[v].shape() || a.views[v].to_vector() != b.views[v].to_vector()) return false;
  return true;
}
}  // namespace

TEST_CASE("same seed gives bit-identical batches with 0, 1, 2 and 4 workers") {
  const auto data = toy(103);
  std::vector<std::vector<batch>> runs;
  for (int workers : {0, 1, 2, 4}) {
    loader ld(data, noisy_two_views{}, {.batch_size = 10, .shuffle = true, .drop_last = false, .num_workers = workers,
                                        .prefetch = 2, .seed = 42});
    runs.push_back(run_epoch(ld, 3));
  }
  REQUIRE(runs[0].size() == 11);
  CHECK(runs[0].back().size() == 3);
  CHECK(runs[0][0].views[0].shape() == ssl::shape{10, 1, 4, 4});
  CHECK(runs[0][0].views[1].shape() == ssl::shape{10, 1, 2, 2});
  for (size_t r = 1; r < runs.size(); ++r) {
    REQUIRE(runs[r].size() == runs[0].size());
    for (size_t s = 0; s < runs[0].size(); ++s) {
      CHECK(runs[r][s].step == int64_t(s));
      CHECK(same(runs[r][s], runs[0][s]));
    }
  }
  // a different seed or epoch changes the batches
  loader other(data, noisy_two_views{}, {.batch_size = 10, .drop_last = false, .num_workers = 2, .seed = 43});
  CHECK_FALSE(same(run_epoch(other, 3)[0], runs[0][0]));
  CHECK_FALSE(same(run_epoch(other, 4)[0], run_epoch(other, 3)[0]));
}

TEST_CASE("an epoch visits every sample once, shuffled, with matching labels and views") {
  const auto data = toy(50);
  loader ld(data, identity_view{}, {.batch_size = 8, .shuffle = true, .drop_last = true, .num_workers = 3, .seed = 1});
  CHECK(ld.steps_per_epoch() == 6);
  std::vector<int64_t> seen;
  for (batch& b : ld.epoch(0)) {
    CHECK(b.size() == 8);
    for (int64_t j = 0; j < b.size(); ++j) {
      const int64_t i = b.indices[size_t(j)];
      seen.push_back(i);
      CHECK(b.labels[size_t(j)] == data.label(i));
      CHECK(b.views[0].at(j, 0, 1, 2) == data.images().at(i, 0, 1, 2));
    }
  }
  CHECK(seen.size() == 48);
  auto sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // no repeats
  CHECK(seen != sorted);                                                     // shuffled
  auto full = ld.order(0);
  std::sort(full.begin(), full.end());
  for (int64_t i = 0; i < 50; ++i) CHECK(full[size_t(i)] == i);  // a permutation
  CHECK(ld.order(0) != ld.order(1));

  loader plain(data, identity_view{}, {.batch_size = 8, .shuffle = false, .drop_last = false, .num_workers = 1});
  CHECK(plain.steps_per_epoch() == 7);
  CHECK(plain.order(5)[7] == 7);
}

TEST_CASE("resuming at (epoch, step) gives the same remaining batches") {
  const auto data = toy(64);
  loader_options opt{.batch_size = 8, .num_workers = 2, .seed = 9};
  loader ld(data, noisy_two_views{}, opt);
  const auto full = run_epoch(ld, 2);
  loader resumed(data, noisy_two_views{}, opt);
  resumed.start(0);
  CHECK(resumed.next().has_value());  // abandon epoch 0 mid-way
  const auto tail = run_epoch(resumed, 2, 5);
  REQUIRE(tail.size() == 3);
  for (size_t s = 0; s < tail.size(); ++s) CHECK(same(tail[s], full[s + 5]));
  CHECK(same(ld.make_batch(2, 6), full[6]));
}

TEST_CASE("errors raised in workers reach the consumer; bad policies and options are named") {
  const auto data = toy(40);
  struct failing {
    std::vector<tensor<cpu>> operator()(const tensor<cpu>& x, ssl::rng&) const {
      if (x[0] > 0.5f) throw ssl::value_error("policy failed on a bright image");
      return {x};
    }
  };
  for (int workers : {0, 2}) {
    loader ld(data, failing{}, {.batch_size = 4, .shuffle = false, .num_workers = workers});
    ld.start(0);
    for (int s = 0; s < 5; ++s) CHECK(ld.next().has_value());  // images 0..19 are dark
    CHECK_THROWS_WITH(ld.next(), Catch::Contains("bright image"));
  }  // destructor joins workers that still have work queued

  struct ragged {
    std::vector<tensor<cpu>> operator()(const tensor<cpu>& x, ssl::rng& g) const {
      return {tensor<cpu>(ssl::shape{1, 2 + int64_t(g.below(2)), 2}, 0.0f)};
    }
  };
  loader bad(data, ragged{}, {.batch_size = 40, .num_workers = 1});
  bad.start(0);
  CHECK_THROWS_AS(bad.next(), ssl::shape_error);
  CHECK_THAT(ssl_test::message_of<ssl::value_error>([&] { loader(data, identity_view{}, {.batch_size = 0}); }),
             Catch::Contains("batch_size"));
  loader unstarted(data);
  CHECK_THROWS_AS(unstarted.next(), ssl::value_error);
}

TEST_CASE("the destructor stops workers mid-epoch without draining") {
  const auto data = toy(1000);
  std::atomic<int> calls{0};
  struct counting {
    std::atomic<int>* calls;
    std::vector<tensor<cpu>> operator()(const tensor<cpu>& x, ssl::rng&) const {
      ++*calls;
      return {x};
    }
  };
  {
    loader ld(data, counting{&calls}, {.batch_size = 10, .num_workers = 4, .prefetch = 1});
    ld.start(0);
    CHECK(ld.next().has_value());
  }
  CHECK(calls.load() <= 10 * (1 + 4 + 4));  // at most the window ahead was made, never the whole epoch
}
