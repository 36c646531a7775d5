// The engine's shared ground: includes, compiler switches and the activations every kernel uses.
//
// lstmkit's fast engine: the recurrence of every cell of the family, forward and backward.
//
// Per step: the products for all gates and one fused pointwise pass that saves the activations.
// Every kernel takes the input itself and projects it step by step (x_t W_ih^T and h W_hh^T into
// a small per-step buffer: no (T, B, gates) projection is written to memory and read back). The
// backward is hand-written: each step does its pointwise derivative and two products, for the
// gradient of the previous state and for the input's (skipped when the input needs none); every
// weight gradient is one GEMM over all B*T rows after the loop, and bias and gain gradients are
// summed in the pass that writes the gate gradients.
//
// Layout: contiguous, batch-first (B, T, .). States (B, H); Y holds the state after every step
// (for a row past its length: the state carried unchanged; the caller zeroes those outputs).
// lengths (B,) int64, or an undefined tensor when every row has all T steps. Gate order in every
// stacked matrix is the cell's own, as documented in lstmkit.cells.

#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LSTMKIT_PANEL_GEMM 1
#endif

namespace lstmkit {

using at::Tensor;

// Activations. float (and bfloat16, computed in float) use a branch-free exp that the compiler
// vectorizes (Cody-Waite range reduction and the Cephes polynomial, about 1 ulp); double uses
// the C library, so the float64 checks against the reference loops are not affected.
#define LSTMKIT_INLINE inline __attribute__((always_inline))

template <typename T>
LSTMKIT_INLINE T exp_(T x) { return std::exp(x); }

template <>
LSTMKIT_INLINE float exp_<float>(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

template <typename T>
LSTMKIT_INLINE T sigm(T x) { return T(1) / (T(1) + exp_<T>(-x)); }

template <typename T>
LSTMKIT_INLINE T tanh_(T x) { return std::tanh(x); }

template <>
LSTMKIT_INLINE float tanh_<float>(float x) { return 1.0f - 2.0f / (1.0f + exp_<float>(2.0f * x)); }

}  // namespace lstmkit
