#pragma once
// NNCLR (Dwibedi et al. 2021, "With a Little Help from My Friends: Nearest-Neighbor Contrastive
// Learning of Visual Representations"): InfoNCE in which the positive of image i's view is not its
// other view's embedding but the nearest neighbour of its embedding in a support set of earlier
// embeddings, contrasted against the other view's predictions.
//
// nnclr_support_set<B>: a FIFO of M unit rows (the support set Q, filled after every step) and the
// lookup NN(z, Q) = argmax_{q in Q} <z / |z|, q> (cosine; ties to the lowest row), under
// stop-gradient. On a device backend (backend/cuda/nnclr.cuh): one GEMM, a row argmax, a row gather.
//
// nnclr (loss): neighbours nn (N, D) (no gradient) and predictions p (N, D) of the other view:
//   l_ij = nn_i . pn_j / tau,  nn and pn unit rows          (N, N) logits
//   L = 1/N sum_i [logsumexp_j l_ij - l_ii]                  row i's target is column i (Eq. 2)
// Gradient into p only: G = (softmax_rows(l) - I) / N, d pn = G^T nn / tau, then back through the
// row normalisation of p. The method symmetrises it (solo-learn's nnclr_loss_func, tau 0.1 in the
// paper): L = 1/2 [nnclr(NN(z1), p2) + nnclr(NN(z2), p1)].
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../backend/cpu/gemm.hpp"
#include "../tensor/counter_buffer.hpp"
#include "detail/row_math.hpp"
#include "loss.hpp"

namespace ssl {

struct nnclr_result {
  float value = 0;
  tensor<cpu> grad_p;  // (N, D)
};

class nnclr {
 public:
  explicit nnclr(float temperature = 0.1f) : temperature_(temperature) {
    losses_detail::expect_positive(temperature, "nnclr temperature");
  }
  float temperature() const { return temperature_; }

  /// neighbours: (N, D) support-set rows (any length; normalised here), predictions: (N, D).
  nnclr_result operator()(const tensor<cpu>& neighbours, const tensor<cpu>& predictions) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(predictions, "nnclr predictions");
    check<shape_error>(neighbours.shape() == predictions.shape(), "nnclr: expected neighbours of the predictions' shape ",
                       predictions.shape(), ", got ", neighbours.shape());
    const int64_t N = predictions.dim(0), D = predictions.dim(1);
    const float inv_t = 1.0f / temperature_;
    const auto nn = ld::normalize_rows(neighbours, N);
    const auto pn = ld::normalize_rows(predictions, N);
    tensor<cpu> G(shape{N, N});  // logits, then the gradient (softmax - I) / N
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, N, D, inv_t, nn.z.data(), D, pn.z.data(), D, 0.0f, G.data(), N);
    std::vector<double> row_loss(static_cast<size_t>(N));
    const float g_scale = 1.0f / float(N);
    parallel_for(0, N, [&](int64_t i) {
      float* l = G.data() + i * N;
      const float li = l[i];
      row_loss[size_t(i)] = ld::softmax_inplace(l, N) - double(li);
      for (int64_t j = 0; j < N; ++j) l[j] *= g_scale;
      l[i] -= g_scale;
    }, 16);
    tensor<cpu> dpn(shape{N, D});  // G^T nn / tau
    ops::gemm(cpu{}, ops::trans::yes, ops::trans::no, N, D, N, inv_t, G.data(), N, nn.z.data(), D, 0.0f, dpn.data(), D);
    return {float(ld::ordered_sum(row_loss) / double(N)), ld::normalize_rows_backward(pn, dpn)};
  }
  /// On a device backend (backend/cuda/nnclr.cuh, under nvcc); `value` stays a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& neighbours, const tensor<B>& predictions) const {
    return device_nnclr(*this, neighbours, predictions);
  }

 private:
  float temperature_;
};

/// The support set: up to M unit rows of dimension D on backend B, a FIFO that starts empty (the
/// lookup uses the filled rows only). Its rows, fill count and write position are tensors on B, for
/// checkpoints (the counts mirrored on the host: reading them never waits for a device).
template <class B = cpu>
class nnclr_support_set {
 public:
  nnclr_support_set() = default;
  nnclr_support_set(int64_t size, int64_t dim) {
    check<value_error>(size > 0 && dim > 0, "nnclr_support_set: expected size > 0 and dim > 0, got size ", size, ", dim ",
                       dim);
    rows_ = tensor<B>(shape{size, dim}, 0.0f);
  }
  int64_t size() const { return rows_.rank() == 2 ? rows_.dim(0) : 0; }
  int64_t dim() const { return rows_.rank() == 2 ? rows_.dim(1) : 0; }
  int64_t filled() const { return filled_.get(); }
  int64_t pointer() const { return pointer_.get(); }
  /// (M, D) in storage order; rows [0, filled()) hold embeddings.
  const tensor<B>& rows() const { return rows_; }

  /// The nearest filled row (cosine) of every row of z (N, D): (N, D) rows of the set; `index`
  /// receives their positions (on a device: one download, only when asked). Needs a filled row.
  tensor<B> nearest(const tensor<B>& z, std::vector<int64_t>* index = nullptr) const {
    check<shape_error>(z.rank() == 2 && z.dim(0) > 0 && z.dim(1) == dim(), "nnclr_support_set::nearest: expected "
                       "embeddings (N, ", dim(), ") with N > 0, got ", z.shape());
    const int64_t F = filled();
    check<value_error>(F > 0, "nnclr_support_set::nearest: the support set is empty (nothing enqueued yet)");
    if constexpr (!std::same_as<B, cpu>) {
      return device_nnclr_nearest(rows_, F, z, index);
    } else {
      const int64_t N = z.dim(0), D = dim();
      const auto zn = losses_detail::normalize_rows(z, N);
      tensor<cpu> sim(shape{N, F});
      ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, F, D, 1.0f, zn.z.data(), D, rows_.data(), D, 0.0f,
                sim.data(), F);
      tensor<cpu> out(shape{N, D});
      std::vector<int64_t> idx(static_cast<size_t>(N));
      parallel_for(0, N, [&](int64_t i) {
        const float* s = sim.data() + i * F;
        idx[size_t(i)] = std::max_element(s, s + F) - s;  // the first of equal maxima
        std::copy_n(rows_.data() + idx[size_t(i)] * D, D, out.data() + i * D);
      }, 64);
      if (index) *index = std::move(idx);
      return out;
    }
  }

  /// z: (B, D) embeddings, normalised and written at the pointer (wrapping; of a batch larger than
  /// the set, its last M rows). At most two copies on a device.
  void enqueue(const tensor<B>& z) {
    check<shape_error>(z.rank() == 2 && z.dim(0) > 0 && z.dim(1) == dim(), "nnclr_support_set::enqueue: expected "
                       "embeddings (B, ", dim(), ") with B > 0, got ", z.shape());
    const int64_t M = size(), D = dim(), rows = z.dim(0), n = std::min(rows, M), skip = rows - n;
    const tensor<B> zn = [&] {
      if constexpr (std::same_as<B, cpu>)
        return losses_detail::normalize_rows(z, rows).z;
      else
        return device_unit_rows(z);
    }();
    const int64_t ptr = pointer(), first = std::min(n, M - ptr);
    const float* src = zn.data() + skip * D;
    tensor<B>::copy_elements(src, rows_.data() + ptr * D, first * D);
    tensor<B>::copy_elements(src + first * D, rows_.data(), (n - first) * D);
    pointer_.set((ptr + n) % M);
    filled_.set(std::min(M, filled() + n));
  }

  /// Checkpoint state: the rows, the fill count, the write position.
  tensor<B>* rows_buffer() { return &rows_; }
  tensor<B>* filled_buffer() { return filled_.buffer(); }
  tensor<B>* pointer_buffer() { return pointer_.buffer(); }

 private:
  tensor<B> rows_;
  counter_buffer<B> filled_, pointer_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/nnclr.cuh"
#endif
