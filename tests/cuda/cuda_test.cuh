#pragma once
// Shared helpers of the CUDA parity tests: the device guard, random inputs, comparisons.
// Every test compares a CUDA op with its CPU reference on the same inputs.
// Without a device each test returns early with a warning (and the run says so once).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <ssl/core/rng.hpp>
#include <ssl/cuda.hpp>

namespace ssl_cuda_test {

inline bool have_device() {
  static const bool ok = [] {
    const bool a = ssl::gpu::device_available();
    if (!a)
      std::fprintf(stderr, "test_cuda: no CUDA device found (cudaGetDeviceCount reports none): "
                           "every CUDA parity test is SKIPPED\n");
    else
      std::fprintf(stderr, "test_cuda: running on %s\n", ssl::gpu::device_name().c_str());
    return a;
  }();
  return ok;
}

/// Uniform values in [lo, hi) from a seeded counter-based rng.
inline ssl::tensor<ssl::cpu> random(const ssl::shape& s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  ssl::rng g(seed);
  ssl::tensor<ssl::cpu> t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.uniform(lo, hi);
  return t;
}

/// max |gpu - cpu| / max(max |cpu|, floor), after copying the device tensor back.
inline double rel_diff(const ssl::tensor<ssl::cuda>& gpu, const ssl::tensor<ssl::cpu>& ref, double floor = 1e-6) {
  ssl::expect_shape(gpu, ref.shape(), "rel_diff");
  const ssl::tensor<ssl::cpu> g = ssl::to_host(gpu);
  double num = 0, den = floor;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    num = std::max(num, double(std::abs(g[i] - ref[i])));
    den = std::max(den, double(std::abs(ref[i])));
    if (!std::isfinite(g[i])) return INFINITY;
  }
  return num / den;
}

/// The end of a step-parity test over two parameter stores (parity/vit_tiny.cuh's): every gradient
/// within 2e-3 relative, then both backends update (`update_both()`) from the HOST gradients and every
/// value must agree within 1e-4. (AdamW divides by sqrt(v) + 1e-8: for the few entries whose gradient
/// is ~1e-9 -- rare positions, near-cancelling sums -- it amplifies the rounding differences of the
/// two backends' gradients, compared above, up to lr / eps; so both update from the same gradients.)
template <class HostStore, class DeviceStore, class Update>
void check_gradients_then_update(HostStore& host, DeviceStore& dev, Update&& update_both) {
  for (int64_t i = 0; i < host.size(); ++i) {
    INFO("parameter " << host.name(i));
    CHECK(rel_diff(dev.at(i).grad, host.at(i).grad) < 2e-3);
  }
  for (int64_t i = 0; i < host.size(); ++i) dev.at(i).grad = ssl::to_device(host.at(i).grad);
  update_both();
  for (int64_t i = 0; i < host.size(); ++i) {
    INFO("parameter " << host.name(i));
    CHECK(rel_diff(dev.at(i).value, host.at(i).value) < 1e-4);
  }
}

}  // namespace ssl_cuda_test

// First statement of every CUDA test case: skip (with a message) when there is no device.
#define SSL_REQUIRE_CUDA_DEVICE()                                            \
  do {                                                                       \
    if (!ssl_cuda_test::have_device()) {                                     \
      WARN("SKIPPED: no CUDA device on this machine");                       \
      return;                                                                \
    }                                                                        \
  } while (0)
