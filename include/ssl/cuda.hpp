#pragma once
// Umbrella of the CUDA backend: include from .cu files compiled by nvcc only.
// A CPU-only build never sees this header (it #errors outside nvcc).
//   tensor<cuda> storage and transfers, the stream/cuBLAS context, and ops::... overloads on
//   tensor<cuda> for every op of backend/cpu: gemm, activations, linear, layer/batch norm,
//   conv2d, pooling, multi-head attention, softmax, NT-Xent, cross-entropy, DINO (centering,
//   Sinkhorn-Knopp targets, iBOT patch loss, mask tokens), masked reconstruction, InfoNCE /
//   MoCo v2 / MoCo v3, BYOL / SimSiam, VICReg, Barlow Twins, KoLeo, triplet, triplet mining,
//   dropout masks, optimizer updates (SGD, AdamW, LARS), gradient clipping, EMA, k-NN classification.
#if !defined(__CUDACC__)
#error "<ssl/cuda.hpp> is for nvcc translation units (.cu); CPU-only code includes <ssl/ssl.hpp>"
#endif
#include "backend/cuda/attention.cuh"
#include "backend/cuda/barlow_twins.cuh"
#include "backend/cuda/batch_norm.cuh"
#include "backend/cuda/buffer.cuh"
#include "backend/cuda/byol.cuh"
#include "backend/cuda/context.cuh"
#include "backend/cuda/conv2d.cuh"
#include "backend/cuda/cross_entropy.cuh"
#include "backend/cuda/dropout.cuh"
#include "backend/cuda/dino_loss.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/gemm.cuh"
#include "backend/cuda/ibot_patch.cuh"
#include "backend/cuda/info_nce.cuh"
#include "backend/cuda/knn.cuh"
#include "backend/cuda/koleo.cuh"
#include "backend/cuda/layer_norm.cuh"
#include "backend/cuda/linear.cuh"
#include "backend/cuda/masked_reconstruction.cuh"
#include "backend/cuda/nt_xent.cuh"
#include "backend/cuda/optim.cuh"
#include "backend/cuda/pooling.cuh"
#include "backend/cuda/sinkhorn_knopp.cuh"
#include "backend/cuda/smooth_l1.cuh"
#include "backend/cuda/msn.cuh"
#include "backend/cuda/softmax.cuh"
#include "backend/cuda/teacher_targets.cuh"
#include "backend/cuda/tokens.cuh"
#include "backend/cuda/triplet.cuh"
#include "backend/cuda/triplet_mining.cuh"
#include "backend/cuda/unit_rows.cuh"
#include "backend/cuda/vicreg.cuh"
#include "backend/cuda/vit_ops.cuh"
#include "backend/cuda/weight_norm.cuh"
