#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>
#include <ssl/eval/label_subset.hpp>

using ssl::cpu;
using ssl::tensor;

namespace {
// N images (N, 1, 2, 2) whose pixels all hold the row index; labels with uneven class sizes.
struct numbered {
  tensor<cpu> images;
  std::vector<int> labels;
};
numbered numbered_set(int64_t n) {
  numbered d{tensor<cpu>(ssl::shape{n, 1, 2, 2}), std::vector<int>(size_t(n))};
  for (int64_t i = 0; i < n; ++i) {
    for (int p = 0; p < 4; ++p) d.images.data()[i * 4 + p] = float(i);
    d.labels[size_t(i)] = int(i % 7 == 0 ? 3 : i % 3);  // classes 0, 1, 2 and a smaller 3
  }
  return d;
}
}  // namespace

TEST_CASE("class_balanced_subset keeps round(fraction * n_c) of every class, at least one") {
  const numbered d = numbered_set(700);
  std::map<int, int64_t> total;
  for (int y : d.labels) ++total[y];
  for (double f : {0.01, 0.1, 0.5}) {
    const auto s = ssl::eval::class_balanced_subset(d.images, d.labels, f, 4);
    std::map<int, int64_t> kept;
    for (int y : s.labels) ++kept[y];
    for (auto [c, n] : total) {
      INFO("fraction " << f << " class " << c);
      CHECK(kept[c] == std::max<int64_t>(1, std::llround(f * double(n))));
    }
    REQUIRE(s.images.dim(0) == int64_t(s.indices.size()));
    CHECK(std::set<int64_t>(s.indices.begin(), s.indices.end()).size() == s.indices.size());
    CHECK(std::is_sorted(s.indices.begin(), s.indices.end()));
    for (size_t j = 0; j < s.indices.size(); ++j) {  // rows and labels are the source's
      CHECK(s.images.data()[j * 4 + 3] == float(s.indices[j]));
      CHECK(s.labels[j] == d.labels[size_t(s.indices[j])]);
    }
  }
  const auto all = ssl::eval::class_balanced_subset(d.images, d.labels, 1.0, 0);
  CHECK(all.indices.size() == 700);
  CHECK(all.labels == d.labels);
}

TEST_CASE("class_balanced_subset: same seed, same subset; another seed, another one") {
  const numbered d = numbered_set(500);
  const auto a = ssl::eval::class_balanced_subset(d.images, d.labels, 0.1, 11);
  const auto b = ssl::eval::class_balanced_subset(d.images, d.labels, 0.1, 11);
  const auto c = ssl::eval::class_balanced_subset(d.images, d.labels, 0.1, 12);
  CHECK(a.indices == b.indices);
  CHECK(a.indices != c.indices);
  CHECK(a.images.to_vector() == b.images.to_vector());
}

TEST_CASE("class_balanced_subset rejects bad input with typed errors") {
  const numbered d = numbered_set(20);
  CHECK_THROWS_WITH(ssl::eval::class_balanced_subset(d.images, d.labels, 0.0, 0),
                    Catch::Contains("fraction in (0, 1]") && Catch::Contains("got 0"));
  CHECK_THROWS_AS(ssl::eval::class_balanced_subset(d.images, d.labels, 1.5, 0), ssl::value_error);
  std::vector<int> short_labels(d.labels.begin(), d.labels.end() - 1);
  CHECK_THROWS_AS(ssl::eval::class_balanced_subset(d.images, short_labels, 0.5, 0), ssl::shape_error);
  CHECK_THROWS_WITH(ssl::eval::class_balanced_subset(d.images, short_labels, 0.5, 0),
                    Catch::Contains("expected 20 labels") && Catch::Contains("got 19"));
  auto negative = d.labels;
  negative[5] = -2;
  CHECK_THROWS_AS(ssl::eval::class_balanced_subset(d.images, negative, 0.5, 0), ssl::value_error);
  CHECK_THROWS_AS(ssl::eval::class_balanced_subset(tensor<cpu>(ssl::shape{20, 4}), d.labels, 0.5, 0), ssl::shape_error);
}
