#pragma once
// Thread-level parallelism. OpenMP when available, serial otherwise.
// Work is split statically, so any per-index result is independent of the
// thread count; reductions that must be deterministic are done per index and
// summed in a fixed order by the caller.
#include <cstdint>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ssl {

/// Number of threads the library uses (OpenMP's setting, 1 without OpenMP).
inline int num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Set the number of threads for the library and for Eigen's GEMM.
inline void set_num_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

/// Calls f(i) for i in [begin, end), split over threads when the range is worth it.
/// `grain` is the minimum number of indices per thread.
template <class F>
inline void parallel_for(int64_t begin, int64_t end, F&& f, int64_t grain = 1) {
  const int64_t n = end - begin;
  if (n <= 0) return;
#if defined(_OPENMP)
  if (n >= 2 * grain && num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = begin; i < end; ++i) f(i);
    return;
  }
#endif
  for (int64_t i = begin; i < end; ++i) f(i);
}

}  // namespace ssl
