#pragma once
// loader: worker threads that turn a dataset plus a view policy into batches, ahead of use.
//
// Determinism: the epoch's order is a permutation drawn from rng(seed).fork(epoch) (or the
// identity without shuffle), and sample `index` gets its own stream
//   rng(seed).fork(epoch).fork(index),
// so every batch is a pure function of (seed, epoch, step): bit-identical whatever the number
// of workers, the prefetch depth, or whether the epoch was resumed mid-way with start(epoch, step).
//
// A batch holds, for each view v the policy returns, one tensor (B, C, h_v, w_v), plus the
// samples' labels and dataset indices. Workers claim whole batches in step order, at most
// num_workers * prefetch ahead of the consumer; batches are handed out in step order.
//
// Data-parallel sharding (world_size > 1): every rank draws the same epoch permutation; global
// batch s is positions [s B W, (s + 1) B W) of it, and rank r takes the r-th slice of B. So the
// ranks' batches of one step are disjoint, their union is exactly the batch a single process with
// batch_size B W gets at that step (the same images, the same augmentations), and
// steps_per_epoch() = floor(N / (B W)) on every rank. Requires drop_last.
// An exception thrown while making a batch (bad file, policy error) is rethrown by next()
// when that batch is due. The destructor stops and joins the workers.
#include <algorithm>
#include <condition_variable>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../tensor/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {

/// View policy: `p(image, g)` turns one image (C, H, W) into its views (each (C', h, w)),
/// drawing all randomness from `g`. View v must have the same shape for every sample
/// (multi-crop: global views one size, local views another). The loader copies the policy
/// once per worker, so a policy may keep scratch state but must be copyable.
/// Satisfied by identity_view, and by the augment presets (ssl/augment).
template <class P>
concept view_policy = std::copy_constructible<P> && requires(P& p, const tensor<cpu>& x, rng& g) {
  { p(x, g) } -> std::convertible_to<std::vector<tensor<cpu>>>;
};

/// The policy that returns the image itself as the only view (evaluation, feature extraction).
struct identity_view {
  std::vector<tensor<cpu>> operator()(const tensor<cpu>& image, rng&) const { return {image}; }
};

struct loader_options {
  int64_t batch_size = 256;
  bool shuffle = true;
  bool drop_last = true;
  int num_workers = 2;  // 0: batches are made in the consumer's thread, on demand
  int prefetch = 2;     // batches made ahead per worker
  uint64_t seed = 0;
  int rank = 0;        // data-parallel shard: this rank's slice of every global batch
  int world_size = 1;  // number of ranks; batch_size is per rank
};

/// One batch: views[v] is (B, C, h_v, w_v); labels (no_label when unlabelled) and dataset
/// indices have B entries.
struct batch {
  std::vector<tensor<cpu>> views;
  std::vector<int> labels;
  std::vector<int64_t> indices;
  int64_t epoch = 0;
  int64_t step = 0;
  int64_t size() const { return int64_t(indices.size()); }
};

template <class D, class Policy = identity_view>
class loader {
  static_assert(dataset<D>, "ssl::data::loader<D, Policy>: D must satisfy ssl::data::dataset "
                            "(size(), image(i) -> tensor<cpu> (C, H, W), label(i) -> int)");
  static_assert(view_policy<Policy>, "ssl::data::loader<D, Policy>: Policy must be copyable and callable as "
                                     "policy(const tensor<cpu>& image, ssl::rng& g) -> std::vector<tensor<cpu>>");

 public:
  /// `data` must outlive the loader (it is read, never copied).
  loader(const D& data, Policy policy = {}, loader_options opt = {})
      : data_(&data), policy_(std::move(policy)), opt_(opt) {
    check<value_error>(opt.batch_size >= 1, "loader: batch_size must be >= 1, got ", opt.batch_size);
    check<value_error>(opt.num_workers >= 0, "loader: num_workers must be >= 0, got ", opt.num_workers);
    check<value_error>(opt.prefetch >= 1, "loader: prefetch must be >= 1, got ", opt.prefetch);
    check<value_error>(opt.world_size >= 1 && opt.rank >= 0 && opt.rank < opt.world_size,
                       "loader: expected 0 <= rank < world_size, got rank ", opt.rank, ", world_size ", opt.world_size);
    check<value_error>(opt.world_size == 1 || opt.drop_last,
                       "loader: data-parallel sharding (world_size ", opt.world_size,
                       ") needs drop_last = true, so every rank gets a full batch at every step");
  }
  loader(const loader&) = delete;
  loader& operator=(const loader&) = delete;
  ~loader() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  const loader_options& options() const { return opt_; }
  int64_t dataset_size() const { return int64_t(data_->size()); }
  /// Batches per epoch: floor(N / B) with drop_last, ceil(N / B) without; sharded over W ranks:
  /// floor(N / (B W)).
  int64_t steps_per_epoch() const {
    const int64_t n = dataset_size(), b = opt_.batch_size * opt_.world_size;
    return opt_.drop_last ? n / b : (n + b - 1) / b;
  }

  /// The dataset indices of `epoch` in visiting order.
  std::vector<int64_t> order(int64_t epoch) const {
    std::vector<int64_t> perm(static_cast<size_t>(dataset_size()));
    std::iota(perm.begin(), perm.end(), int64_t(0));
    if (opt_.shuffle && perm.size() > 1) {
      rng g = rng(opt_.seed).fork(uint64_t(epoch));
      for (size_t i = perm.size() - 1; i > 0; --i) std::swap(perm[i], perm[g.below(uint32_t(i + 1))]);
    }
    return perm;
  }

  /// Begins `epoch` at batch `step` (0 for a fresh epoch; a checkpoint's step to resume).
  /// Batches of a previous, unfinished epoch are dropped.
  void start(int64_t epoch, int64_t step = 0) {
    const int64_t steps = steps_per_epoch();
    check<value_error>(epoch >= 0, "loader::start: epoch must be >= 0, got ", epoch);
    check<value_error>(step >= 0 && step <= steps, "loader::start: step must be in [0, ", steps, "], got ", step);
    auto perm = std::make_shared<const std::vector<int64_t>>(order(epoch));
    {
      std::lock_guard lk(m_);
      ++generation_;
      ready_.clear();
      epoch_ = epoch;
      perm_ = std::move(perm);
      end_step_ = steps;
      next_claim_ = next_consume_ = step;
      started_ = true;
      if (threads_.empty())
        for (int w = 0; w < opt_.num_workers; ++w) threads_.emplace_back([this] { work(); });
    }
    work_cv_.notify_all();
  }

  /// The next batch of the current epoch, or nullopt once the epoch is done.
  /// Rethrows an exception raised while making this batch.
  std::optional<batch> next() {
    std::unique_lock lk(m_);
    check<value_error>(started_, "loader::next: call start(epoch) first");
    if (next_consume_ >= end_step_) return std::nullopt;
    if (opt_.num_workers == 0) {
      const int64_t step = next_consume_++;
      auto perm = perm_;
      const int64_t epoch = epoch_;
      lk.unlock();
      return make_batch(epoch, step, *perm, policy_);
    }
    const int64_t step = next_consume_;
    ready_cv_.wait(lk, [&] { return ready_.count(step) != 0; });
    slot s = std::move(ready_.at(step));
    ready_.erase(step);
    ++next_consume_;
    lk.unlock();
    work_cv_.notify_all();
    if (s.error) std::rethrow_exception(s.error);
    return std::move(s.result);
  }

  /// Makes batch `step` of `epoch` directly, in the calling thread (the same batch next() gives).
  batch make_batch(int64_t epoch, int64_t step) const {
    check<value_error>(step >= 0 && step < steps_per_epoch(), "loader::make_batch: step must be in [0, ",
                       steps_per_epoch(), "), got ", step);
    Policy p = policy_;
    return make_batch(epoch, step, order(epoch), p);
  }

  /// Range over the rest of an epoch: `for (batch& b : ld.epoch(e)) ...` (calls start(e, step)).
  class epoch_range {
   public:
    class iterator {
     public:
      using value_type = batch;
      using difference_type = std::ptrdiff_t;
      explicit iterator(loader* l = nullptr) : l_(l) { advance(); }
      batch& operator*() { return *current_; }
      iterator& operator++() {
        advance();
        return *this;
      }
      void operator++(int) { advance(); }
      bool operator==(std::default_sentinel_t) const { return !current_; }

     private:
      void advance() {
        if (l_) current_ = l_->next();
      }
      loader* l_;
      std::optional<batch> current_;
    };
    iterator begin() { return iterator(l_); }
    std::default_sentinel_t end() { return {}; }
    explicit epoch_range(loader* l) : l_(l) {}

   private:
    loader* l_;
  };
  epoch_range epoch(int64_t e, int64_t step = 0) {
    start(e, step);
    return epoch_range(this);
  }

 private:
  struct slot {
    std::optional<batch> result;
    std::exception_ptr error;
  };

  batch make_batch(int64_t epoch, int64_t step, const std::vector<int64_t>& perm, Policy& policy) const {
    const int64_t n = int64_t(perm.size());
    const int64_t first = (step * opt_.world_size + opt_.rank) * opt_.batch_size;
    const int64_t B = std::min(opt_.batch_size, n - first);
    batch out;
    out.epoch = epoch;
    out.step = step;
    out.indices.assign(perm.begin() + first, perm.begin() + first + B);
    out.labels.resize(size_t(B));
    const rng epoch_rng = rng(opt_.seed).fork(uint64_t(epoch));
    for (int64_t j = 0; j < B; ++j) {
      const int64_t index = out.indices[size_t(j)];
      rng g = epoch_rng.fork(uint64_t(index));
      std::vector<tensor<cpu>> views = policy(data_->image(index), g);
      if (j == 0) {
        check<shape_error>(!views.empty(), "loader: the view policy returned no views for sample ", index);
        for (size_t v = 0; v < views.size(); ++v) {
          check<shape_error>(views[v].rank() == 3, "loader: view ", v, " of sample ", index,
                             " should be an image (C, H, W), got shape ", views[v].shape());
          out.views.emplace_back(shape{B, views[v].dim(0), views[v].dim(1), views[v].dim(2)});
        }
      }
      check<shape_error>(views.size() == out.views.size(), "loader: the view policy returned ", views.size(),
                         " views for sample ", index, ", expected ", out.views.size(), " as for the batch's first sample");
      for (size_t v = 0; v < views.size(); ++v) {
        const auto& t = out.views[v];
        const shape want{t.dim(1), t.dim(2), t.dim(3)};
        check<shape_error>(views[v].shape() == want, "loader: view ", v, " of sample ", index, " has shape ",
                           views[v].shape(), ", expected ", want,
                           " as for the batch's first sample (crop or resize images to one size per view)");
        std::memcpy(out.views[v].data() + j * want.numel(), views[v].data(), size_t(want.numel()) * sizeof(float));
      }
      out.labels[size_t(j)] = int(data_->label(index));
    }
    return out;
  }

  void work() {
    Policy policy = policy_;  // each worker its own copy
    std::unique_lock lk(m_);
    for (;;) {
      const int64_t window = int64_t(opt_.num_workers) * opt_.prefetch;
      work_cv_.wait(lk, [&] {
        return stop_ || (started_ && next_claim_ < end_step_ && next_claim_ < next_consume_ + window);
      });
      if (stop_) return;
      const int64_t step = next_claim_++;
      const uint64_t generation = generation_;
      const int64_t epoch = epoch_;
      const auto perm = perm_;
      lk.unlock();
      slot s;
      try {
        s.result = make_batch(epoch, step, *perm, policy);
      } catch (...) {
        s.error = std::current_exception();
      }
      lk.lock();
      if (generation == generation_) {
        ready_[step] = std::move(s);
        ready_cv_.notify_all();
      }
    }
  }

  const D* data_;
  Policy policy_;
  loader_options opt_;

  std::mutex m_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
  bool stop_ = false, started_ = false;
  uint64_t generation_ = 0;
  int64_t epoch_ = 0, end_step_ = 0, next_claim_ = 0, next_consume_ = 0;
  std::shared_ptr<const std::vector<int64_t>> perm_;
  std::map<int64_t, slot> ready_;
};

}  // namespace ssl::data
