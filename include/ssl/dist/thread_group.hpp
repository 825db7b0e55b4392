#pragma once
// thread_group: `world_size` ranks as threads of one process, talking through shared memory.
//
//   ssl::dist::thread_group group(2);                       // 2 ranks
//   group.run([&](ssl::dist::thread_communicator& comm) {   // called once per rank, concurrently
//     ... the same data-parallel program an MPI rank would run ...
//   });
//
// Uses: testing data-parallel code without MPI (the equivalence tests in tests/dist/), and
// data-parallel training on one machine with `threads_per_rank` compute threads per rank.
// Collectives are deterministic: sums run in rank order, so every rank gets the same bits and a
// rerun gives the same bits. If one rank throws, the others are released from their current or
// next collective with rank_failure, and run() rethrows the first rank's exception.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "../core/parallel.hpp"
#include "communicator.hpp"

namespace ssl::dist {

/// Thrown inside a rank when another rank of its group failed (its exception is the one run() rethrows).
struct rank_failure : error {
  using error::error;
};

namespace detail {
/// What the ranks of one group share: a reusable barrier, the buffers the ranks publish for the
/// current collective, and a scratch buffer for reductions.
struct thread_group_state {
  explicit thread_group_state(int w) : world(w), published(size_t(w), nullptr), sizes(size_t(w), 0) {}
  int world;
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  bool failed = false;
  std::vector<const float*> published;
  std::vector<int64_t> sizes;
  std::vector<float> scratch;

  void wait_all() {
    std::unique_lock lk(m);
    check<rank_failure>(!failed, "thread_group: another rank failed");
    const uint64_t gen = generation;
    if (++arrived == world) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    cv.wait(lk, [&] { return generation != gen || failed; });
    check<rank_failure>(!failed || generation != gen, "thread_group: another rank failed");
  }
  void fail() {
    std::lock_guard lk(m);
    failed = true;
    cv.notify_all();
  }
};
}  // namespace detail

/// A rank's view of its thread_group; satisfies Communicator. Not copyable across groups: it is
/// made by thread_group::run and valid inside the callback.
class thread_communicator {
 public:
  thread_communicator(detail::thread_group_state& s, int rank) : s_(&s), rank_(rank) {}
  int rank() const { return rank_; }
  int world_size() const { return s_->world; }

  void all_reduce_sum(float* p, int64_t n) {
    publish(p, n, "all_reduce_sum");
    const int w = s_->world;
    if (rank_ == 0) s_->scratch.assign(size_t(n), 0.0f);
    s_->wait_all();
    // Rank r sums its slice of the elements over all ranks, in rank order.
    const int64_t lo = n * rank_ / w, hi = n * (rank_ + 1) / w;
    float* out = s_->scratch.data();
    for (int64_t i = lo; i < hi; ++i) {
      float acc = s_->published[0][i];
      for (int r = 1; r < w; ++r) acc += s_->published[size_t(r)][i];
      out[i] = acc;
    }
    s_->wait_all();
    for (int64_t i = 0; i < n; ++i) p[i] = out[i];
    s_->wait_all();  // scratch and the published buffers stay valid until every rank has read
  }

  void all_gather(const float* in, int64_t n, float* out) {
    publish(in, n, "all_gather");
    for (int r = 0; r < s_->world; ++r) {
      const float* src = s_->published[size_t(r)];
      float* dst = out + int64_t(r) * n;
      if (src != dst)
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    }
    s_->wait_all();
  }

  void broadcast(float* p, int64_t n, int root) {
    check<value_error>(root >= 0 && root < s_->world, "broadcast: root must be in [0, ", s_->world, "), got ", root);
    publish(p, n, "broadcast");
    if (rank_ != root) {
      const float* src = s_->published[size_t(root)];
      for (int64_t i = 0; i < n; ++i) p[i] = src[i];
    }
    s_->wait_all();
  }

  void barrier() { s_->wait_all(); }

 private:
  // Every rank states its buffer and size; ranks that disagree on the size fail together.
  void publish(const float* p, int64_t n, const char* op) {
    check<value_error>(n >= 0, op, ": n must be >= 0, got ", n);
    s_->published[size_t(rank_)] = p;
    s_->sizes[size_t(rank_)] = n;
    s_->wait_all();
    for (int r = 0; r < s_->world; ++r)
      check<value_error>(s_->sizes[size_t(r)] == n, op, ": rank ", rank_, " has ", n, " elements but rank ", r,
                         " has ", s_->sizes[size_t(r)], " (every rank must pass the same size)");
  }

  detail::thread_group_state* s_;
  int rank_;
};

static_assert(Communicator<thread_communicator>);

class thread_group {
 public:
  /// world_size ranks; each rank's thread uses `threads_per_rank` compute threads (ssl::set_num_threads).
  explicit thread_group(int world_size, int threads_per_rank = 1) : world_(world_size), threads_(threads_per_rank) {
    check<value_error>(world_size >= 1, "thread_group: world_size must be >= 1, got ", world_size);
    check<value_error>(threads_per_rank >= 1, "thread_group: threads_per_rank must be >= 1, got ", threads_per_rank);
  }
  int world_size() const { return world_; }

  /// Calls fn(comm) on world_size threads, comm.rank() = 0 .. world_size - 1, and waits for all.
  /// Rethrows the exception of the lowest rank that threw for a reason other than rank_failure.
  void run(const std::function<void(thread_communicator&)>& fn) {
    detail::thread_group_state state(world_);
    std::vector<std::exception_ptr> errors(static_cast<size_t>(world_));
    std::vector<std::thread> ranks;
    ranks.reserve(size_t(world_));
    for (int r = 0; r < world_; ++r)
      ranks.emplace_back([&, r] {
        try {
          set_num_threads(threads_);
          thread_communicator comm(state, r);
          fn(comm);
        } catch (...) {
          errors[size_t(r)] = std::current_exception();
          state.fail();
        }
      });
    for (auto& t : ranks) t.join();
    std::exception_ptr secondary;
    for (auto& e : errors) {
      if (!e) continue;
      try {
        std::rethrow_exception(e);
      } catch (const rank_failure&) {
        if (!secondary) secondary = e;
      } catch (...) {
        throw;
      }
    }
    if (secondary) std::rethrow_exception(secondary);
  }

 private:
  int world_;
  int threads_;
};

}  // namespace ssl::dist
