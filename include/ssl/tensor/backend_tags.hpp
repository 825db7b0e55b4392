#pragma once
// Backend tags. A backend is a type; tensors know theirs at compile time and
// every op is an overload set on the tag. The CPU overload is the reference
// every CUDA overload is tested against.
#include <concepts>
#include <type_traits>

namespace ssl {

/// Reference backend: the packed register-tile GEMM (Eigen for tiny products), OpenMP threads.
struct cpu {
  static constexpr const char* name = "cpu";
};
/// NVIDIA GPUs: cuBLAS and the kernels in backend/cuda (only seen by nvcc).
struct cuda {
  static constexpr const char* name = "cuda";
};

/// Satisfied by `cpu` and `cuda`.
template <class B>
concept backend = std::same_as<B, cpu> || std::same_as<B, cuda>;

}  // namespace ssl
