// ssl::ops::conv2d_forward / conv2d_backward against a direct (7-loop) convolution in double,
// over many geometries: kernels 1-5 (square and not), strides 1-3, padding 0-3, odd and even
// sizes, outputs of 1x1 up to 11x9, batches that make several images share one group, channel
// counts that exercise every register-tile height and split contractions. The CPU path reads
// kernel taps as runs of polyphase planes, so every index computation is exercised.
#include <catch2/catch.hpp>
#include <ssl/ssl.hpp>

#include <cmath>
#include <vector>

namespace {

struct geometry {
  int64_t n, c, h, w, o, kh, kw, stride, pad;
};

ssl::tensor<ssl::cpu> random_tensor(const ssl::shape& s, ssl::rng& g) {
  ssl::tensor<ssl::cpu> t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = 2.0f * g.uniform() - 1.0f;
  return t;
}

// Direct convolution: y[n,o,i,j] = Σ_{c,a,b} w[o,c,a,b] x[n,c,i s + a - p, j s + b - p] (zero outside).
// Backward of L = Σ y * dy: dx and dw by the same loops.
struct direct_result {
  std::vector<double> y, dx, dw;
};

direct_result direct_conv(const geometry& g, const ssl::tensor<ssl::cpu>& x, const ssl::tensor<ssl::cpu>& w,
                          const ssl::tensor<ssl::cpu>& dy, int64_t oh, int64_t ow) {
  direct_result r;
  r.y.assign(size_t(g.n * g.o * oh * ow), 0.0);
  r.dx.assign(size_t(x.numel()), 0.0);
  r.dw.assign(size_t(w.numel()), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t o = 0; o < g.o; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t yi = ((n * g.o + o) * oh + i) * ow + j;
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t a = 0; a < g.kh; ++a)
              for (int64_t b = 0; b < g.kw; ++b) {
                const int64_t u = i * g.stride + a - g.pad, v = j * g.stride + b - g.pad;
                if (u < 0 || u >= g.h || v < 0 || v >= g.w) continue;
                const int64_t xi = ((n * g.c + c) * g.h + u) * g.w + v;
                const int64_t wi = ((o * g.c + c) * g.kh + a) * g.kw + b;
                r.y[size_t(yi)] += double(w[wi]) * double(x[xi]);
                r.dx[size_t(xi)] += double(w[wi]) * double(dy[yi]);
                r.dw[size_t(wi)] += double(x[xi]) * double(dy[yi]);
              }
        }
  return r;
}

double max_abs_diff(const ssl::tensor<ssl::cpu>& t, const std::vector<double>& ref) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(double(t[i]) - ref[size_t(i)]));
  return m;
}

}  // namespace

TEST_CASE("conv2d ops match a direct convolution on many geometries (forward, dx, dw)") {
  std::vector<geometry> cases;
  for (int64_t k : {1, 2, 3, 4, 5})
    for (int64_t s : {1, 2, 3})
      for (int64_t p : {0, 1, 3}) cases.push_back({3, 2, 9, 8, 3, k, k, s, p});
  cases.push_back({5, 3, 7, 7, 4, 3, 3, 2, 1});    // ConvNet-S late layer shape, 4x4 output, grouped images
  cases.push_back({4, 2, 14, 14, 3, 3, 3, 2, 1});  // 7x7 output
  cases.push_back({2, 2, 11, 6, 3, 2, 3, 1, 1});   // non-square kernel and input
  cases.push_back({3, 1, 5, 5, 2, 3, 3, 1, 2});    // padding 2 with a 3x3 kernel
  cases.push_back({2, 4, 8, 8, 5, 4, 4, 4, 0});    // patch-embedding shape (kernel = stride)
  cases.push_back({40, 1, 3, 3, 2, 3, 3, 1, 0});   // 1x1 outputs: many images in one group
  cases.push_back({3, 5, 6, 6, 37, 3, 3, 1, 1});   // 37 output channels: row blocks of 12, 12, 12 and 1
  cases.push_back({2, 30, 5, 5, 13, 3, 3, 1, 1});  // K = 270 > 256: the forward's contraction in two blocks
  cases.push_back({2, 3, 5, 4, 260, 3, 3, 2, 1});  // O = 260 > 256: dx's contraction in two blocks, O not a tile multiple
  ssl::rng g(7);
  for (const geometry& c : cases) {
    const int64_t oh = (c.h + 2 * c.pad - c.kh) / c.stride + 1, ow = (c.w + 2 * c.pad - c.kw) / c.stride + 1;
    if (oh < 1 || ow < 1) continue;
    CAPTURE(c.n, c.c, c.h, c.w, c.o, c.kh, c.kw, c.stride, c.pad);
    const auto x = random_tensor(ssl::shape{c.n, c.c, c.h, c.w}, g);
    const auto w = random_tensor(ssl::shape{c.o, c.c, c.kh, c.kw}, g);
    const auto dy = random_tensor(ssl::shape{c.n, c.o, oh, ow}, g);
    const direct_result ref = direct_conv(c, x, w, dy, oh, ow);

    ssl::tensor<ssl::cpu> y, dx;
    ssl::ops::conv2d_forward(x, w, nullptr, c.stride, c.pad, y);
    REQUIRE(y.shape() == ssl::shape{c.n, c.o, oh, ow});
    CHECK(max_abs_diff(y, ref.y) < 1e-4);

    ssl::tensor<ssl::cpu> dw(w.shape());
    dw.fill(0.5f);  // backward accumulates: start from a known value
    ssl::ops::conv2d_backward(x, w, dy, c.stride, c.pad, &dx, dw, nullptr);
    CHECK(max_abs_diff(dx, ref.dx) < 1e-4);
    std::vector<double> dw_ref = ref.dw;
    for (double& v : dw_ref) v += 0.5;
    CHECK(max_abs_diff(dw, dw_ref) < 1e-4);
  }
}
