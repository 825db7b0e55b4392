#pragma once
// Timing helpers shared by the benchmark programs (one program per workload of
// shared/WORKLOADS.md). Every program prints its numbers as machine-readable lines
//   RESULT <workload> <metric> <value> [unit]
// which scripts/bench pairs with the same lines from benchmarks/torch_reference.py.
// Workload names: W1, W2, W3 (training steps, metric img_per_s and ms_per_step),
// W4_n<size> (metric gflops; extra implementations as W4_n<size>_<impl>), W5 (queries_per_s).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ssl/core/profile.hpp>

namespace ssl_bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Summary of repeated timings, in seconds.
struct timing {
  std::vector<double> samples;
  double median = 0, min = 0, max = 0;
  /// (max - min) / median: run-to-run spread.
  double spread() const { return median > 0 ? (max - min) / median : 0; }
};

inline timing summarize(std::vector<double> samples) {
  timing t;
  t.samples = samples;
  if (samples.empty()) return t;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  t.median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  t.min = samples.front();
  t.max = samples.back();
  return t;
}

/// Runs f() `warmup` times untimed, then at least `min_repeats` timed calls and until
/// `min_seconds` of timed calls have passed (at most `max_repeats`).
template <class F>
timing time_repeats(F&& f, int warmup = 1, int min_repeats = 3, double min_seconds = 1.0, int max_repeats = 1000) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> samples;
  double total = 0;
  while (int(samples.size()) < max_repeats && (int(samples.size()) < min_repeats || total < min_seconds)) {
    const auto t0 = clock_type::now();
    f();
    samples.push_back(seconds_since(t0));
    total += samples.back();
  }
  return summarize(std::move(samples));
}

/// Prints one machine-readable result line.
inline void report(const std::string& workload, const std::string& metric, double value, const std::string& unit = "") {
  std::printf("RESULT %s %s %.6g%s%s\n", workload.c_str(), metric.c_str(), value, unit.empty() ? "" : " ",
              unit.c_str());
  std::fflush(stdout);
}

/// Prints a human-readable timing line (not parsed).
inline void describe(const std::string& what, const timing& t) {
  std::printf("# %s: median %.3f ms, min %.3f ms, spread %.1f%% over %zu runs\n", what.c_str(), t.median * 1e3,
              t.min * 1e3, t.spread() * 100, t.samples.size());
  std::fflush(stdout);
}

/// The lines of a training-step workload: optionally every sample, the human-readable summary,
/// then RESULT <workload> ms_per_step and img_per_s (`images` per step). The workload is named
/// `name` at its WORKLOADS.md batch `reference_batch`, `name_b<batch>` at any other batch.
inline void report_step_timing(const std::string& name, const std::string& what, int64_t images,
                               int64_t reference_batch, const timing& t, bool print_samples) {
  if (print_samples) {  // every timed step, in order (spots drift or a noisy neighbour)
    std::printf("# steps (ms):");
    for (double v : t.samples) std::printf(" %.1f", v * 1e3);
    std::printf("\n");
  }
  describe(what + " (batch " + std::to_string(images) + ")", t);
  const std::string w = images == reference_batch ? name : name + "_b" + std::to_string(images);
  report(w, "ms_per_step", t.median * 1e3, "ms");
  report(w, "img_per_s", double(images) / t.median, "img/s");
}

/// Built with -DSSL_PROFILE: runs `step` `steps` times under the scoped CPU timers of
/// core/profile.hpp (run with 1 thread for a complete breakdown) and prints their table;
/// otherwise says how to get one.
template <class F>
void print_scoped_profile(int steps, F&& step) {
#if defined(SSL_PROFILE)
  ssl::profile::reset();
  for (int i = 0; i < steps; ++i) {
    SSL_PROFILE_SCOPE("other (method glue, allocs)");
    step();
  }
  ssl::profile::print(stdout, steps);
#else
  (void)steps;
  (void)step;
  std::printf("# (scoped-timer table: build with -DSSL_PROFILE)\n");
#endif
}

/// Tiny command line: `--name value` pairs and `--flag`s.
struct args {
  int argc;
  char** argv;
  bool flag(const char* name) const {
    for (int i = 1; i < argc; ++i)
      if (std::strcmp(argv[i], name) == 0) return true;
    return false;
  }
  long value(const char* name, long fallback) const {
    for (int i = 1; i + 1 < argc; ++i)
      if (std::strcmp(argv[i], name) == 0) return std::strtol(argv[i + 1], nullptr, 10);
    return fallback;
  }
};

/// Threads for the run: --threads N, else OMP_NUM_THREADS, else 2 (the workloads' setting).
inline int thread_count(const args& a) {
  const char* env = std::getenv("OMP_NUM_THREADS");
  return int(a.value("--threads", env ? std::strtol(env, nullptr, 10) : 2));
}

}  // namespace ssl_bench
