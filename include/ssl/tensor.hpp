#pragma once
// Umbrella: backend tags, shapes, tensors, CPU reference ops.
#include "backend/cpu/gemm.hpp"
#include "tensor/backend_tags.hpp"
#include "tensor/shape.hpp"
#include "tensor/tensor.hpp"
