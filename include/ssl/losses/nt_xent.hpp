#pragma once
// NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020).
//
// z: (2N, D) embeddings of two views, row i and row i+N are views of the same image.
// zn = z / |z| (row-wise), S = zn zn^T / tau with the diagonal masked (-inf);
// row i's positive is its other view p(i) = i +- N, the other 2N-2 rows are negatives:
//   L = 1/(2N) sum_i [ logsumexp_{j != i} S_ij - S_i,p(i) ].
// With an external bank (K, D) of extra negatives the logits of row i are extended by
// zn_i . bn_k / tau (k < K): one (2N, 2N+K) similarity matrix.
//
// Gradient: with P the row softmax (P_ii = 0) and G = (P - onehot(p)) / (2N),
//   d zn = ((G + G^T)[:2N, :2N] zn + G[:, 2N:] bn) / tau,  d bn = G[:, 2N:]^T zn / tau,
// then back through the normalisation. Only one (2N, 2N+K) matrix is ever held: the
// similarities become G in place (one pass: softmax, then minus the one-hot), then its
// square block becomes G + G^T in place, so d zn is a single GEMM.
#include "detail/row_math.hpp"

namespace ssl {

struct nt_xent_result {
  float value = 0;
  tensor<cpu> grad_z;     // (2N, D)
  tensor<cpu> grad_bank;  // (K, D), empty without a bank
};

class nt_xent {
 public:
  explicit nt_xent(float temperature = 0.5f) : temperature_(temperature) {
    losses_detail::expect_positive(temperature, "nt_xent temperature");
  }
  float temperature() const { return temperature_; }

  // z: (2N, D)
  nt_xent_result operator()(const tensor<cpu>& z) const { return compute(z, nullptr); }
  // z: (2N, D), bank: (K, D) extra negatives shared by every row
  nt_xent_result operator()(const tensor<cpu>& z, const tensor<cpu>& bank) const { return compute(z, &bank); }
  // z: (2N, D) on a device backend: the same loss there (backend/cuda/nt_xent.cuh, under nvcc);
  // the result's `value` is a (1) device tensor, so the step never waits for it.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& z) const {
    return device_nt_xent(*this, z);
  }

 private:
  nt_xent_result compute(const tensor<cpu>& z, const tensor<cpu>* bank) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(z, "nt_xent z");
    check<shape_error>(z.dim(0) % 2 == 0 && z.dim(0) >= 2, "nt_xent z: expected (2N, D) with an even number of rows, got ",
                       z.shape());
    const int64_t R = z.dim(0), N = R / 2, D = z.dim(1);
    int64_t K = 0;
    if (bank) {
      check<shape_error>(bank->rank() == 2 && bank->dim(1) == D, "nt_xent bank: expected (K, ", D, "), got ",
                         bank->shape());
      K = bank->dim(0);
    }
    const int64_t C = R + K;  // columns of the similarity matrix
    const float inv_t = 1.0f / temperature_;

    // A = [zn; bn]: (C, D)
    const auto zn = ld::normalize_rows(z, R);
    ld::normalized_rows bn;
    tensor<cpu> A;
    if (K > 0) {
      bn = ld::normalize_rows(*bank, K);
      A = tensor<cpu>(shape{C, D});
      std::copy_n(zn.z.data(), R * D, A.data());
      std::copy_n(bn.z.data(), K * D, A.data() + R * D);
    }
    const tensor<cpu>& Aref = K > 0 ? A : zn.z;

    // S = zn A^T / tau: (2N, C), turned into G in place row by row.
    tensor<cpu> S(shape{R, C});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, R, C, D, inv_t, zn.z.data(), D, Aref.data(), D, 0.0f, S.data(), C);
    std::vector<double> row_loss(static_cast<size_t>(R));
    const float inv_rows = 1.0f / float(R);
    parallel_for(0, R, [&](int64_t i) {
      float* s = S.data() + i * C;
      const int64_t pos = i < N ? i + N : i - N;
      const float s_pos = s[pos];
      s[i] = -std::numeric_limits<float>::infinity();
      const double lse = ld::softmax_inplace(s, C, inv_rows);  // G row = P / 2N ...
      row_loss[size_t(i)] = lse - double(s_pos);
      s[pos] -= inv_rows;                                     // ... - onehot(p) / 2N
    }, 16);

    nt_xent_result r;
    r.value = float(ld::ordered_sum(row_loss) / double(R));
    // The square block G[:, :2N] only meets zn: symmetrise it in place (H = G + G^T) so that
    // d zn = H zn / tau + G[:, 2N:] bn / tau takes one GEMM over the big matrix, not two.
    symmetrize_square_block(S.data(), R, C);
    tensor<cpu> dzn(shape{R, D});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::no, R, D, R, inv_t, S.data(), C, zn.z.data(), D, 0.0f, dzn.data(), D);
    tensor<cpu> dbn;
    if (K > 0) {
      ops::gemm(cpu{}, ops::trans::no, ops::trans::no, R, D, K, inv_t, S.data() + R, C, bn.z.data(), D, 1.0f, dzn.data(),
                D);
      // d bn = G[:, 2N:]^T zn / tau: (K, D)
      dbn = tensor<cpu>(shape{K, D});
      ops::gemm(cpu{}, ops::trans::yes, ops::trans::no, K, D, R, inv_t, S.data() + R, C, zn.z.data(), D, 0.0f, dbn.data(),
                D);
    }
    r.grad_z = ld::normalize_rows_backward(zn, dzn);
    if (K > 0) {
      r.grad_bank = ld::normalize_rows_backward(bn, dbn);
    } else if (bank) {
      r.grad_bank = tensor<cpu>(bank->shape());
    }
    return r;
  }

  // In place on the leading (n, n) block of a row-major (n, ld) matrix: M <- M + M^T.
  // Tiled so both the row and the transposed accesses stay in cache; the tile rows are
  // handed out in pairs (t, last - t) so the two threads get equal halves of the triangle.
  static void symmetrize_square_block(float* m, int64_t n, int64_t ld) {
    constexpr int64_t tile = 64;
    const int64_t tiles = (n + tile - 1) / tile;
    auto tile_row = [&](int64_t bi) {
      for (int64_t bj = bi; bj < tiles; ++bj)
        for (int64_t i = bi * tile; i < std::min(n, (bi + 1) * tile); ++i)
          for (int64_t j = std::max(bj * tile, i); j < std::min(n, (bj + 1) * tile); ++j) {
            const float sum = m[i * ld + j] + m[j * ld + i];
            m[i * ld + j] = sum;
            m[j * ld + i] = sum;
          }
    };
    parallel_for(0, (tiles + 1) / 2, [&](int64_t t) {
      tile_row(t);
      if (tiles - 1 - t != t) tile_row(tiles - 1 - t);
    });
  }

  float temperature_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/nt_xent.cuh"
#endif
