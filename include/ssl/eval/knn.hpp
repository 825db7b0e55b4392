#pragma once
// Weighted k-NN classifier on frozen features (DINO's protocol, WORKLOADS.md W5):
//   sim(q, t) = <q, t> / (|q| |t|)               cosine similarity
//   N_k(q)    = the k train rows of largest sim  (ties: lower train index first)
//   votes[c]  = sum_{t in N_k(q), y_t = c} exp(sim(q, t) / T)
//   predict   = argmax_c votes[c]                (ties: lower class first)
// Both sides are normalised once and packed for the register-tile kernel of backend/cpu/tile_product.hpp
// (12 x 32 tiles on AVX-512): the train features into panels of 32 rows stored dimension-major
// (one copy, n x D floats, made once per call), each chunk of test rows into panels of 12 rows.
// Test rows are processed in chunks, each split into tasks of 500 rows run in parallel (parallel_for);
// a task runs against tiles of train rows that stay in L2: for each block of 12 test rows it computes
// the (12, tile) cosines tile by tile in registers and merges each row into its running top-k list
// while the row is still in L1.
// Neither the full (N_test, N_train) nor a (chunk, N_train) similarity matrix is formed.
// (A general-purpose GEMM per (500, 512) block, Eigen's gebp, reached 67% of the FMA peak end to end
// on a 2-core Zen 4; the packed kernel skips the per-block packing and the separate scaling pass.)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "../backend/cpu/packed_gemm.hpp"  // pack_rows_as_panel (and tile_product.hpp)
#include "../core/parallel.hpp"
#include "../tensor/tensor.hpp"
#include "labels.hpp"

namespace ssl::eval {

struct knn_options {
  int k = 20;                  // neighbours
  float temperature = 0.07f;   // T of the exp(sim / T) vote weights
  int64_t chunk = 1000;        // test rows per similarity block
  int64_t train_tile = 512;    // train rows per block (rounded up to a whole number of 32-row panels;
                               // 512 rows of dim 256 are 512 KB, which stays in L2)
  int num_classes = 0;         // 0: 1 + the largest train label
};

struct knn_result {
  double accuracy = 0;           // top-1 in [0, 1] (0 when no test labels were given)
  std::vector<int> predictions;  // one class per test row
};

namespace detail {

// Throws numeric_error when row i's norm (or squared norm) v is not finite.
inline void check_finite_norm(double v, int64_t i, const char* what) {
  check<numeric_error>(std::isfinite(v), "knn: row ", i, " of the ", what,
                       " is not finite (it holds a NaN or an infinity: its norm is ", v, ")");
}

// The checks shared by the CPU and CUDA knn_classify (train: (n, dim), test: (m, test_dim));
// returns the number of classes.
inline int check_knn_inputs(int64_t n, int64_t dim, std::span<const int> train_labels, int64_t m, int64_t test_dim,
                            std::span<const int> test_labels, const knn_options& o) {
  check<shape_error>(test_dim == dim, "knn: train features have dimension ", dim, " but test features have ",
                     test_dim);
  check<shape_error>(int64_t(train_labels.size()) == n, "knn: ", n, " train rows but ", train_labels.size(),
                     " train labels");
  check<shape_error>(test_labels.empty() || int64_t(test_labels.size()) == m, "knn: ", m, " test rows but ",
                     test_labels.size(), " test labels");
  check(o.k >= 1 && o.k <= n, "knn: k must be in [1, ", n, "] (the number of train rows), got ", o.k);
  check(o.temperature > 0, "knn: temperature must be > 0, got ", o.temperature);
  check(o.chunk >= 1, "knn: chunk must be >= 1, got ", o.chunk);
  check(o.train_tile >= 1, "knn: train_tile must be >= 1, got ", o.train_tile);
  check(n < int64_t(std::numeric_limits<int32_t>::max()), "knn: at most 2^31 - 1 train rows, got ", n);
  const int classes = o.num_classes > 0 ? o.num_classes : max_label(train_labels, "knn train labels") + 1;
  check_labels(train_labels, classes, "knn train labels");
  if (!test_labels.empty()) check_labels(test_labels, classes, "knn test labels");
  return classes;
}

// predictions[i] = argmax_c sum_{u < k, label(idx[i k + u]) = c} exp(val[i k + u] / T) for i < rows
// (ties: lower class first); votes: `classes` doubles of scratch.
inline void knn_vote(const float* top_val, const int32_t* top_idx, int k, int64_t rows, std::span<const int> train_labels,
                     float inv_t, std::vector<double>& votes, int* predictions) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* tv = top_val + i * k;
    const int32_t* tx = top_idx + i * k;
    std::fill(votes.begin(), votes.end(), 0.0);
    for (int u = 0; u < k; ++u) votes[size_t(train_labels[size_t(tx[u])])] += std::exp(double(tv[u] * inv_t));
    predictions[i] = int(std::max_element(votes.begin(), votes.end()) - votes.begin());
  }
}

// 1 / max(|row|, 1e-12) for each row of x: (N, D) (F.normalize's eps). A row with a NaN or an
// infinity throws numeric_error (its cosines, hence its neighbours, would be meaningless).
inline std::vector<float> inverse_row_norms(const tensor<cpu>& x, const char* what) {
  const int64_t n = x.dim(0), dim = x.dim(1);
  std::vector<float> inv(static_cast<size_t>(n));
  std::vector<double> sq(static_cast<size_t>(n));
  parallel_for(0, n, [&](int64_t i) {
    const float* r = x.data() + i * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) s += double(r[j]) * r[j];
    sq[size_t(i)] = s;
    inv[size_t(i)] = float(1.0 / std::max(std::sqrt(s), 1e-12));
  }, 1024);
  for (int64_t i = 0; i < n; ++i) check_finite_norm(sq[size_t(i)], i, what);
  return inv;
}

// Rows [r0, r0 + rows) of x: (N, D), each scaled by scale[r], packed into the row panels that
// for_row_blocks visits (tile_product.hpp): element (r, t) of a block of MR rows at [t MR + r].
inline void pack_scaled_rows(const tensor<cpu>& x, const std::vector<float>& scale, int64_t r0, int64_t rows,
                             float* dst) {
  const int64_t dim = x.dim(1);
  const float* base = x.data() + r0 * dim;
  ops::detail::pack_row_panels(rows, dim, dst, [&](int64_t r, int64_t t) {
    return base[r * dim + t] * scale[size_t(r0 + r)];
  });
}

// Train rows scaled by scale[r], in panels of P = tile_cols rows stored dimension-major: element
// (row P p + v, dim t) at [p D P + t P + v]; rows past N are zero. Returns (panels, D, P).
inline tensor<cpu> pack_column_panels(const tensor<cpu>& x, const std::vector<float>& scale) {
  constexpr int64_t P = ops::detail::tile_cols;
  const int64_t n = x.dim(0), dim = x.dim(1), panels = (n + P - 1) / P;
  tensor<cpu> out(shape{panels, dim, P});
  parallel_for(0, panels, [&](int64_t p) {
    ops::detail::pack_rows_as_panel(
        out.data() + p * dim * P, std::min(P, n - p * P), dim,
        [&](int64_t v) { return x.data() + (p * P + v) * dim; }, [&](int64_t v) { return scale[size_t(p * P + v)]; });
  }, 16);
  return out;
}

// Merges the candidates s[0, n) (train indices offset + j, increasing) into a row's running list of
// its k largest values val[0, filled), sorted by value descending then index ascending.
// The k-th value is the threshold; blocks of 16 candidates whose maximum does not beat it are
// skipped without a branch per element.
inline void top_k_update(const float* s, int64_t n, int64_t offset, int k, float* val, int32_t* idx, int& filled) {
  float threshold = filled == k ? val[k - 1] : -std::numeric_limits<float>::infinity();
  auto insert = [&](float v, int32_t j) {
    // position after every entry >= v (equal values keep the lower, earlier index first)
    int pos = filled < k ? filled : k - 1;
    while (pos > 0 && val[pos - 1] < v) {
      val[pos] = val[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    val[pos] = v;
    idx[pos] = j;
    if (filled < k) ++filled;
    if (filled == k) threshold = val[k - 1];
  };
  int64_t j = 0;
  for (; j < n && filled < k; ++j) insert(s[j], int32_t(offset + j));
  constexpr int64_t block = 16;
  for (; j + block <= n; j += block) {
    float m = s[j];
    for (int64_t u = 1; u < block; ++u) m = std::max(m, s[j + u]);
    if (!(m > threshold)) continue;
    for (int64_t u = 0; u < block; ++u)
      if (s[j + u] > threshold) insert(s[j + u], int32_t(offset + j + u));
  }
  for (; j < n; ++j)
    if (s[j] > threshold) insert(s[j], int32_t(offset + j));
}

}  // namespace detail

/// Predicts a class for each row of test: (M, D) from train: (N, D) with train_labels (N).
/// If test_labels is non-empty (size M) the result's accuracy is filled in.
inline knn_result knn_classify(const tensor<cpu>& train, std::span<const int> train_labels, const tensor<cpu>& test,
                               std::span<const int> test_labels = {}, const knn_options& o = {}) {
  expect_rank(train, 2, "knn train features");
  expect_rank(test, 2, "knn test features");
  const int64_t n = train.dim(0), m = test.dim(0), dim = train.dim(1);
  const int classes = detail::check_knn_inputs(n, dim, train_labels, m, test.dim(1), test_labels, o);
  const std::vector<float> inv_train = detail::inverse_row_norms(train, "train features");
  const std::vector<float> inv_test = detail::inverse_row_norms(test, "test features");
  const int64_t chunk = std::min<int64_t>(o.chunk, std::max<int64_t>(m, 1));
  namespace tp = ops::detail;
  constexpr int64_t P = tp::tile_cols;  // train rows per panel
  const int64_t tile = std::min((o.train_tile + P - 1) / P * P, (n + P - 1) / P * P);
  const float inv_t = 1.0f / o.temperature;
  const int k = o.k;
  // cos(q, t) = <q / |q|, t / |t|>: both sides are scaled while packed
  const tensor<cpu> train_panels = detail::pack_column_panels(train, inv_train);  // (ceil(N / P), D, P)

  // Each chunk of test rows is split into tasks of `rows_per_task` rows, run in parallel; a task runs
  // its own serial products over the train tiles, so a chunk costs one parallel region (no barrier per
  // tile), and the split, hence every rounding, does not depend on the number of threads.
  // 500 rows: the default chunk makes one task per core on the 2-core target.
  constexpr int64_t rows_per_task = 500;
  const int64_t tasks_max = (chunk + rows_per_task - 1) / rows_per_task;
  tensor<cpu> test_panels(shape{chunk, dim});  // the chunk's normalised test rows, packed per task
  // per task: the cosines of one block of up to tile_rows test rows against one train tile
  tensor<cpu> sim(shape{tasks_max, int64_t(tp::tile_rows), tile});
  std::vector<float> top_val(static_cast<size_t>(chunk * k));
  std::vector<int32_t> top_idx(static_cast<size_t>(chunk * k));
  std::vector<int> filled(static_cast<size_t>(chunk));

  knn_result res;
  res.predictions.assign(static_cast<size_t>(m), 0);
  for (int64_t r0 = 0; r0 < m; r0 += chunk) {
    const int64_t rows = std::min(chunk, m - r0);
    const int64_t tasks = (rows + rows_per_task - 1) / rows_per_task;
    std::fill(filled.begin(), filled.end(), 0);
    parallel_for(0, tasks, [&](int64_t p) {
      const int64_t a = p * rows_per_task, b = std::min(rows, a + rows_per_task);
      if (a >= b) return;
      float* q = test_panels.data() + a * dim;  // rows [a, b) of the chunk, (b - a, D) in row panels
      detail::pack_scaled_rows(test, inv_test, r0 + a, b - a, q);
      float* buf = sim.data() + p * tp::tile_rows * tile;  // (tile_rows, tile)
      for (int64_t c0 = 0; c0 < n; c0 += tile) {
        const int64_t cols = std::min(tile, n - c0), panels = (cols + P - 1) / P;
        const float* tpanel0 = train_panels.data() + (c0 / P) * dim * P;
        tp::for_row_blocks(b - a, [&]<int MR>(int64_t r) {
          const float* qp = q + r * dim;
          for (int64_t c = 0; c < panels; ++c) {
            const float* tpanel = tpanel0 + c * dim * P;
            tp::vfloat acc[MR][2];
            tp::tile_product<MR>(
                dim, [&](int i, int64_t t) { return qp[t * MR + i]; }, [&](int64_t t) { return tpanel + t * P; }, acc);
            for (int i = 0; i < MR; ++i) tp::store_tile_row(buf + i * tile + c * P, acc[i]);
          }
          for (int i = 0; i < MR; ++i) {
            const int64_t row = a + r + i;
            detail::top_k_update(buf + i * tile, cols, c0, k, top_val.data() + row * k, top_idx.data() + row * k,
                                 filled[size_t(row)]);
          }
        });
      }
      std::vector<double> votes(static_cast<size_t>(classes));
      // the vote of detail::knn_vote, written out here: the call measured 3-4% slower on W5 (code
      // layout of this hot task, A/B-tested on Zen 4)
      for (int64_t i = a; i < b; ++i) {
        const float* tv = top_val.data() + i * k;
        const int32_t* tx = top_idx.data() + i * k;
        std::fill(votes.begin(), votes.end(), 0.0);
        for (int u = 0; u < k; ++u) votes[size_t(train_labels[size_t(tx[u])])] += std::exp(double(tv[u] * inv_t));
        res.predictions[size_t(r0 + i)] = int(std::max_element(votes.begin(), votes.end()) - votes.begin());
      }
    });
  }
  if (!test_labels.empty()) res.accuracy = detail::accuracy(res.predictions, test_labels);
  return res;
}

}  // namespace ssl::eval

#if defined(__CUDACC__)
#include "../backend/cuda/knn.cuh"
#endif
