#pragma once
// Opt-in scoped CPU timers for finding where a workload spends its time (build with -DSSL_PROFILE;
// benchmarks/w2_mae and w3_dino print the table with --profile when built that way).
//   SSL_PROFILE_SCOPE("gemm");   // times the rest of the enclosing scope
// Each label accumulates the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID) spent in its
// scopes, EXCLUSIVE of nested labelled scopes (attention's GEMMs count as "gemm", its softmax as
// "attention"), summed over all threads. Work that a parallel_for hands to another thread is seen
// only where that thread enters a labelled scope itself, so profile with 1 thread for a complete
// breakdown. Without SSL_PROFILE the macro expands to nothing and this header costs nothing.
#if defined(SSL_PROFILE)
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string_view>
#include <vector>

namespace ssl::profile {

/// One label: total exclusive CPU nanoseconds and number of scope entries.
struct site {
  const char* name;
  std::atomic<int64_t> ns{0};
  std::atomic<int64_t> calls{0};
};

namespace detail {
inline std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<site*>& registry() {
  static std::vector<site*> r;
  return r;
}
inline int64_t thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
struct frame {
  int64_t child_ns = 0;
};
inline thread_local frame* current_frame = nullptr;
}  // namespace detail

/// Registers a label (once per call site; sites with the same name are merged when printed).
inline site* make_site(const char* name) {
  auto* s = new site{name};
  std::lock_guard<std::mutex> lock(detail::registry_mutex());
  detail::registry().push_back(s);
  return s;
}

class scope {
 public:
  explicit scope(site* s) : site_(s), parent_(detail::current_frame), t0_(detail::thread_ns()) {
    detail::current_frame = &frame_;
  }
  ~scope() {
    const int64_t dt = detail::thread_ns() - t0_;
    detail::current_frame = parent_;
    if (parent_) parent_->child_ns += dt;
    site_->ns += dt - frame_.child_ns;
    site_->calls += 1;
  }
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

 private:
  site* site_;
  detail::frame frame_;
  detail::frame* parent_;
  int64_t t0_;
};

/// Zeroes every label.
inline void reset() {
  std::lock_guard<std::mutex> lock(detail::registry_mutex());
  for (site* s : detail::registry()) s->ns = 0, s->calls = 0;
}

/// Prints "label  ms-per-`per`  share  calls" lines, largest first; `per` divides the totals
/// (e.g. the number of steps profiled).
inline void print(std::FILE* f = stdout, int per = 1) {
  std::vector<std::pair<const char*, std::pair<int64_t, int64_t>>> rows;
  {
    std::lock_guard<std::mutex> lock(detail::registry_mutex());
    for (site* s : detail::registry()) {
      auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return std::string_view(r.first) == s->name; });
      if (it == rows.end()) rows.push_back({s->name, {s->ns.load(), s->calls.load()}});
      else it->second.first += s->ns.load(), it->second.second += s->calls.load();
    }
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  int64_t total = 0;
  for (const auto& r : rows) total += r.second.first;
  for (const auto& r : rows)
    if (r.second.first > 0)
      std::fprintf(f, "# profile %-28s %9.2f ms  %5.1f%%  %8lld calls\n", r.first, double(r.second.first) / 1e6 / per,
                   total ? 100.0 * double(r.second.first) / double(total) : 0.0, (long long)(r.second.second / per));
  std::fprintf(f, "# profile %-28s %9.2f ms\n", "total (CPU)", double(total) / 1e6 / per);
  std::fflush(f);
}

}  // namespace ssl::profile

#define SSL_PROFILE_CAT_(a, b) a##b
#define SSL_PROFILE_CAT(a, b) SSL_PROFILE_CAT_(a, b)
#define SSL_PROFILE_SCOPE(label)                                                                              \
  static ::ssl::profile::site* const SSL_PROFILE_CAT(ssl_profile_site_, __LINE__) =                           \
      ::ssl::profile::make_site(label);                                                                       \
  ::ssl::profile::scope SSL_PROFILE_CAT(ssl_profile_scope_, __LINE__)(SSL_PROFILE_CAT(ssl_profile_site_, __LINE__))
#else
#define SSL_PROFILE_SCOPE(label) static_assert(true, "")
#endif
