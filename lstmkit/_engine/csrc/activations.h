// The activations every kernel uses, on their own (no PyTorch headers): the engine includes them,
// and so does the C++ that lstmkit/_engine/codegen.py writes for user cells.

#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lstmkit {

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
