#pragma once
// Elementwise kernels: fill, y = a x + b y, activations (forward from x, backward from y or x).
#include <cstdint>

#include "common.cuh"

namespace ssl::gpu::kernels {

SSL_KERNEL void fill(float* __restrict__ y, float v, int64_t n) {
  SSL_GRID_STRIDE(i, n) y[i] = v;
}

// y = a * x + b * y
SSL_KERNEL void axpby(float a, const float* __restrict__ x, float b, float* __restrict__ y, int64_t n) {
  SSL_GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}

// z = x + y
SSL_KERNEL void add(const float* __restrict__ x, const float* __restrict__ y, float* __restrict__ z, int64_t n) {
  SSL_GRID_STRIDE(i, n) z[i] = x[i] + y[i];
}

SSL_KERNEL void relu_forward(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  SSL_GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
// y: the forward output
SSL_KERNEL void relu_backward(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx,
                              int64_t n) {
  SSL_GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2   (exact GELU)
SSL_KERNEL void gelu_forward(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  SSL_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  }
}
// dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi)
SSL_KERNEL void gelu_backward(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dx,
                              int64_t n) {
  SSL_GRID_STRIDE(i, n) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

// SwiGLU on rows of [a | b] (rows x 2H) -> y (rows x H): y = silu(a) b, silu(a) = a s(a), s = sigmoid.
SSL_KERNEL void swiglu_forward(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t H) {
  SSL_GRID_STRIDE(i, rows * H) {
    const int64_t r = i / H, j = i - r * H;
    const float a = x[r * 2 * H + j], b = x[r * 2 * H + H + j];
    y[i] = a / (1.0f + expf(-a)) * b;
  }
}
// da = dy b s(a) (1 + a (1 - s(a))),  db = dy silu(a); dx rows x 2H = [da | db].
SSL_KERNEL void swiglu_backward(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dx,
                                int64_t rows, int64_t H) {
  SSL_GRID_STRIDE(i, rows * H) {
    const int64_t r = i / H, j = i - r * H;
    const float a = x[r * 2 * H + j], b = x[r * 2 * H + H + j];
    const float s = 1.0f / (1.0f + expf(-a));
    dx[r * 2 * H + j] = dy[i] * b * s * (1.0f + a * (1.0f - s));
    dx[r * 2 * H + H + j] = dy[i] * a * s;
  }
}

}  // namespace ssl::gpu::kernels
