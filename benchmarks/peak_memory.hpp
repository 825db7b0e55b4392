#pragma once
// Peak resident memory of a benchmark process (the "peak MiB" columns of scripts/bench).
// A memory_probe made on the first line of main() records the baseline: the resident set
// before the workload's model and data exist. report() prints
//   RESULT <workload> peak_mib <v> MiB                getrusage(RUSAGE_SELF).ru_maxrss (high-water mark)
//   RESULT <workload> baseline_mib <v> MiB            resident set at the probe's construction
//   RESULT <workload> peak_over_baseline_mib <v> MiB  peak - baseline: what the workload itself needed
// ru_maxrss covers the whole process, so each process runs ONE workload (scripts/bench does);
// benchmarks/torch_reference.py prints the same lines (baseline taken after `import torch`).
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "bench_util.hpp"

namespace ssl_bench {

/// High-water mark of this process's resident set, MiB (Linux reports ru_maxrss in KiB).
inline double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;
}

/// Resident set right now, MiB: /proc/self/statm field 2 (pages); the peak when that is unreadable.
inline double current_rss_mib() {
  long total_pages = 0, resident_pages = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return peak_rss_mib();
  const int read = std::fscanf(f, "%ld %ld", &total_pages, &resident_pages);
  std::fclose(f);
  if (read != 2) return peak_rss_mib();
  return double(resident_pages) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

class memory_probe {
 public:
  memory_probe() : baseline_mib_(current_rss_mib()) {}

  double baseline_mib() const { return baseline_mib_; }

  /// The three RESULT lines for `workload` (same name as its timing lines).
  void report(const std::string& workload) const {
    const double peak = peak_rss_mib();
    std::printf("# %s peak resident memory: %.1f MiB (baseline %.1f MiB, workload %.1f MiB)\n", workload.c_str(),
                peak, baseline_mib_, peak - baseline_mib_);
    ssl_bench::report(workload, "peak_mib", peak, "MiB");
    ssl_bench::report(workload, "baseline_mib", baseline_mib_, "MiB");
    ssl_bench::report(workload, "peak_over_baseline_mib", peak - baseline_mib_, "MiB");
  }

 private:
  double baseline_mib_;
};

}  // namespace ssl_bench
