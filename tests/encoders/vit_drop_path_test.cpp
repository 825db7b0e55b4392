// vit::set_drop_path: stochastic depth switched on (or off) after construction, e.g. to fine-tune.
#include <catch2/catch.hpp>
#include <ssl/encoders/vit.hpp>

using ssl::cpu;
using ssl::tensor;

namespace {
tensor<cpu> images(int64_t n, uint64_t seed) {
  tensor<cpu> x(ssl::shape{n, 1, 8, 8});
  ssl::rng g(seed);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = g.normal();
  return x;
}
double max_abs_diff(const tensor<cpu>& a, const tensor<cpu>& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::abs(a.data()[i] - b.data()[i])));
  return m;
}
}  // namespace

TEST_CASE("vit::set_drop_path sets rates rising linearly over the blocks and takes effect in forward only") {
  ssl::vit<> v({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 3, .heads = 2}, ssl::rng(1));
  const tensor<cpu> x = images(16, 2);
  const tensor<cpu> reference = v.infer(x);
  CHECK(max_abs_diff(v.forward(x).y, reference) < 1e-6);  // no drop path yet: train mode = eval mode

  v.set_drop_path(0.6f);
  CHECK(v.options().drop_path == 0.6f);
  CHECK(v.block(0).options().drop_path == 0.0f);
  CHECK(v.block(1).options().drop_path == Approx(0.3f));
  CHECK(v.block(2).options().drop_path == Approx(0.6f));
  CHECK(max_abs_diff(v.infer(x), reference) == 0);      // eval mode drops nothing
  CHECK(max_abs_diff(v.forward(x).y, reference) > 1e-3);  // 16 samples, two blocks at 0.3 / 0.6: some dropped

  v.set_drop_path(0.0f);
  CHECK(max_abs_diff(v.forward(x).y, reference) < 1e-6);

  CHECK_THROWS_AS(v.set_drop_path(1.0f), ssl::value_error);
  CHECK_THROWS_WITH(v.set_drop_path(-0.1f), Catch::Contains("rate in [0, 1)") && Catch::Contains("-0.1"));
}
