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

#include "activations.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LSTMKIT_PANEL_GEMM 1
#endif

namespace lstmkit {

using at::Tensor;

}  // namespace lstmkit
