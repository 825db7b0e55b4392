#pragma once
// Blocked parallel loops for elementwise CPU kernels (activations, dropout, ...).
// Blocks have a fixed size, so per-block results never depend on the thread count.
#include <algorithm>
#include <cstdint>

#include "../../core/parallel.hpp"

namespace ssl::ops::detail {

/// Elements per block of an elementwise kernel (64 KiB of floats).
inline constexpr int64_t elementwise_block = 16384;

/// Calls f(begin, end) on consecutive blocks of [0, n), blocks spread over threads.
template <class F>
inline void for_each_block(int64_t n, F&& f, int64_t block = elementwise_block) {
  const int64_t blocks = (n + block - 1) / block;
  parallel_for(0, blocks, [&](int64_t b) { f(b * block, std::min(n, (b + 1) * block)); });
}

}  // namespace ssl::ops::detail
