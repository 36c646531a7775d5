// Matrix products: BLAS on raw pointers, the engine's own AVX2/FMA kernel for the small
// per-step products, and weights packed once per call for either.

#pragma once

#include "common.h"

namespace lstmkit {

// BLAS on raw pointers: no tensor views, no dispatch per step. PyTorch's CPU builds carry MKL's
// Fortran symbols; they are declared weak, and where they are absent (or for bfloat16) the same
// product goes through ATen.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

// MKL's packed GEMM (float): the weights of the recurrent product are packed once per call and
// block of rows instead of at every step; and a thread-local thread count for small problems.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
int MKL_Set_Num_Threads_Local(int n) __attribute__((weak));   // the C entry (the lower-case one is Fortran)
}
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

// Row-major C (M x N, leading dimension ldc) = beta * C + A (M x K) @ op(W), where W is (N x K) and
// op(W) = W^T when w_transposed, else W is (K x N) and op(W) = W.
template <typename T>
void gemm_rm(bool w_transposed, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* W, int64_t ldw,
             double beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const char* ta = w_transposed ? "T" : "N";
  const int m = N, n = M, k = K, la = ldw, lb = lda, lc = ldc;
  if constexpr (std::is_same_v<T, float>) {
    if (sgemm_) { const float one = 1, b = beta; sgemm_(ta, "N", &m, &n, &k, &one, W, &la, A, &lb, &b, C, &lc); return; }
  }
  if constexpr (std::is_same_v<T, double>) {
    if (dgemm_) { const double one = 1, b = beta; dgemm_(ta, "N", &m, &n, &k, &one, W, &la, A, &lb, &b, C, &lc); return; }
  }
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const auto a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opt);
  const auto w = w_transposed ? at::from_blob(const_cast<T*>(W), {N, K}, {ldw, 1}, opt).t()
                              : at::from_blob(const_cast<T*>(W), {K, N}, {ldw, 1}, opt);
  auto c = at::from_blob(C, {M, N}, {ldc, 1}, opt);
  if (beta == 0) at::mm_out(c, a, w); else c.addmm_(a, w, beta, 1);
}

#ifdef LSTMKIT_PANEL_GEMM
// The per-step product of a recurrence is small (a few to a few dozen rows), where a BLAS call
// spends much of its time copying and dispatching. This kernel (float, AVX2 + FMA) reads A in
// place and the weights from panels packed once per call: panel p holds, for every k, the 16
// values op(W)[k][16p .. 16p+15] (zeros past N). Six rows by 16 columns of C stay in 12
// registers (named variables: an array of them would be kept in memory) over a block of K; K goes
// in blocks of kKBlock so a panel block stays in the L1 cache.
constexpr int64_t kPanel = 16, kKBlock = 256, kRows = 6;
alignas(32) const float kZeroRow[kKBlock] = {};

LSTMKIT_INLINE void panel_store(float* c, __m256 lo, __m256 hi, int64_t ncols, bool accumulate) {
  if (ncols == kPanel) {
    if (accumulate) { lo = _mm256_add_ps(lo, _mm256_loadu_ps(c)); hi = _mm256_add_ps(hi, _mm256_loadu_ps(c + 8)); }
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
    return;
  }
  alignas(32) float tmp[kPanel];
  _mm256_store_ps(tmp, lo);
  _mm256_store_ps(tmp + 8, hi);
  for (int64_t j = 0; j < ncols; ++j) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
}

// Rows a[0..5] (K values each) times one panel block -> C rows c[0..5] (ncols values each).
LSTMKIT_INLINE void panel_block(const float* const* a, const float* bp, int64_t K, float* const* c, int64_t ncols,
                                bool accumulate) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(bp + k * kPanel), b1 = _mm256_loadu_ps(bp + k * kPanel + 8);
    __m256 x = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + k);
    c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + k);
    c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + k);
    c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + k);
    c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + k);
    c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  panel_store(c[0], c00, c01, ncols, accumulate);
  panel_store(c[1], c10, c11, ncols, accumulate);
  panel_store(c[2], c20, c21, ncols, accumulate);
  panel_store(c[3], c30, c31, ncols, accumulate);
  panel_store(c[4], c40, c41, ncols, accumulate);
  panel_store(c[5], c50, c51, ncols, accumulate);
}

// Two rows a0, a1 (K values each) times P <= 3 consecutive panels (48 columns) -> C rows c0, c1
// (ncols values each, ncols <= 16 P). For the rows a six-row tile would leave idle: 12
// accumulators still hide the FMA latency (a four-row tile's 8 do not), and the weights are read
// straight into the multiply-adds, so 2 broadcasts and 2P loads feed 4P multiply-adds.
template <int P>
LSTMKIT_INLINE void panel_block_2rows(const float* a0, const float* a1, const float* bp, int64_t panel_stride,
                                      int64_t K, float* c0, float* c1, int64_t ncols, bool accumulate) {
  const float* q0 = bp;
  const float* q1 = bp + panel_stride;
  const float* q2 = bp + 2 * panel_stride;
  __m256 r00 = _mm256_setzero_ps(), r01 = r00, r02 = r00, r03 = r00, r04 = r00, r05 = r00, r10 = r00, r11 = r00,
         r12 = r00, r13 = r00, r14 = r00, r15 = r00;
  for (int64_t k = 0; k < K; ++k) {
    const __m256 x0 = _mm256_broadcast_ss(a0 + k), x1 = _mm256_broadcast_ss(a1 + k);
    __m256 b = _mm256_loadu_ps(q0 + k * kPanel);
    r00 = _mm256_fmadd_ps(x0, b, r00); r10 = _mm256_fmadd_ps(x1, b, r10);
    b = _mm256_loadu_ps(q0 + k * kPanel + 8);
    r01 = _mm256_fmadd_ps(x0, b, r01); r11 = _mm256_fmadd_ps(x1, b, r11);
    if constexpr (P > 1) {
      b = _mm256_loadu_ps(q1 + k * kPanel);
      r02 = _mm256_fmadd_ps(x0, b, r02); r12 = _mm256_fmadd_ps(x1, b, r12);
      b = _mm256_loadu_ps(q1 + k * kPanel + 8);
      r03 = _mm256_fmadd_ps(x0, b, r03); r13 = _mm256_fmadd_ps(x1, b, r13);
    }
    if constexpr (P > 2) {
      b = _mm256_loadu_ps(q2 + k * kPanel);
      r04 = _mm256_fmadd_ps(x0, b, r04); r14 = _mm256_fmadd_ps(x1, b, r14);
      b = _mm256_loadu_ps(q2 + k * kPanel + 8);
      r05 = _mm256_fmadd_ps(x0, b, r05); r15 = _mm256_fmadd_ps(x1, b, r15);
    }
  }
  const int64_t n0 = std::min(kPanel, ncols);
  panel_store(c0, r00, r01, n0, accumulate);
  panel_store(c1, r10, r11, n0, accumulate);
  if constexpr (P > 1) {
    const int64_t n1 = std::min(kPanel, ncols - kPanel);
    panel_store(c0 + kPanel, r02, r03, n1, accumulate);
    panel_store(c1 + kPanel, r12, r13, n1, accumulate);
  }
  if constexpr (P > 2) {
    const int64_t n2 = ncols - 2 * kPanel;
    panel_store(c0 + 2 * kPanel, r04, r05, n2, accumulate);
    panel_store(c1 + 2 * kPanel, r14, r15, n2, accumulate);
  }
}

// C (M x N, ldc) = A (M x K, lda) @ the packed operand (K x N), or C += that (add_to_c). Rows go in tiles of six; where M
// leaves 1, 2 or 4 rows over, those go in pairs through the two-row kernel (padding them to a
// six-row tile wastes the padded rows' work: docs/performance.md). Other
// remainders (3, 5) pad the last six-row tile: its missing rows read zeros and write to a scratch row.
inline void panel_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, float* C,
                       int64_t ldc, bool add_to_c) {
  const int64_t panels = (N + kPanel - 1) / kPanel;
  const int64_t rem = M % kRows;
  const int64_t six_end = rem == 1 || rem == 2 || rem == 4 ? M - rem : M;   // rows [six_end, M) in pairs
  alignas(32) float sink[3 * kPanel];
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t kb = std::min(kKBlock, K - k0);
    const bool accumulate = add_to_c || k0 > 0;
    for (int64_t m = 0; m < six_end; m += kRows) {
      const float* a[kRows];
      int64_t row[kRows];
      for (int64_t r = 0; r < kRows; ++r) {
        row[r] = m + r < M ? m + r : -1;
        a[r] = row[r] >= 0 ? A + row[r] * lda + k0 : kZeroRow;
      }
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t n0 = p * kPanel, ncols = std::min(kPanel, N - n0);
        float* c[kRows];
        for (int64_t r = 0; r < kRows; ++r) c[r] = row[r] >= 0 ? C + row[r] * ldc + n0 : sink;
        panel_block(a, packed + (p * K + k0) * kPanel, kb, c, ncols, accumulate);
      }
    }
    for (int64_t m = six_end; m < M; m += 2) {
      const bool pair = m + 1 < M;
      const float* a0 = A + m * lda + k0;
      const float* a1 = pair ? a0 + lda : kZeroRow;
      for (int64_t p = 0; p < panels; p += 3) {
        const int64_t n0 = p * kPanel, ncols = std::min(3 * kPanel, N - n0);
        float* c0 = C + m * ldc + n0;
        float* c1 = pair ? c0 + ldc : sink;
        const float* bp = packed + (p * K + k0) * kPanel;
        switch (std::min<int64_t>(3, panels - p)) {
          case 3: panel_block_2rows<3>(a0, a1, bp, K * kPanel, kb, c0, c1, ncols, accumulate); break;
          case 2: panel_block_2rows<2>(a0, a1, bp, K * kPanel, kb, c0, c1, ncols, accumulate); break;
          default: panel_block_2rows<1>(a0, a1, bp, K * kPanel, kb, c0, c1, ncols, accumulate); break;
        }
      }
    }
  }
}
#endif

// Whether float products use the panel kernel (where compiled in) rather than BLAS; own_gemm()
// switches it (benchmarks and tests compare the two).
inline bool use_panel_gemm = true;

inline int64_t own_gemm(int64_t on) {
#ifdef LSTMKIT_PANEL_GEMM
  const bool previous = use_panel_gemm;
  if (on >= 0) use_panel_gemm = on != 0;
  return previous;
#else
  return -1;   // not compiled in: BLAS always
#endif
}

// op(W) packed as the B operand of C = A @ op(W) for A of M rows, once per call and block of
// rows: into panels for the panel kernel, else by MKL (float); product() falls back to gemm_rm
// where neither is available (no MKL, double, bfloat16). Packing copies the whole weight, so a
// weight used once (a single step: uses == 1) goes to BLAS as it is.
template <typename T>
struct PackedWeight {
  bool w_transposed;
  int64_t M, N, K, ldw;
  const T* W;
  Tensor packed;
  bool panels = false;
  PackedWeight(bool w_transposed_, int64_t M_, int64_t N_, int64_t K_, const T* W_, int64_t ldw_, int64_t uses)
      : w_transposed(w_transposed_), M(M_), N(N_), K(K_), ldw(ldw_), W(W_) {
    if constexpr (std::is_same_v<T, float>) {
      if (!W || M <= 0 || N <= 0 || K <= 0 || uses < 2) return;
#ifdef LSTMKIT_PANEL_GEMM
      if (use_panel_gemm) {
        const int64_t n_panels = (N + kPanel - 1) / kPanel;
        packed = at::zeros({n_panels * K * kPanel}, at::kFloat);
        float* d = packed.data_ptr<float>();
        for (int64_t p = 0; p < n_panels; ++p)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t j = 0; j < kPanel && p * kPanel + j < N; ++j) {
              const int64_t n = p * kPanel + j;
              d[(p * K + k) * kPanel + j] = w_transposed ? W[n * ldw + k] : W[k * ldw + n];
            }
        panels = true;
        return;
      }
#endif
      if (cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute) {
        const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, M, N, K);
        packed = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, at::kFloat);
        cblas_sgemm_pack(kRowMajor, kBMatrix, w_transposed ? kTrans : kNoTrans, M, N, K, 1.0f, W, ldw,
                         packed.data_ptr<float>());
      }
    }
  }
  // C (M x N, ldc) = beta * C + A (M x K, lda) @ op(W)
  void product(const T* A, int64_t lda, double beta, T* C, int64_t ldc) const {
    if constexpr (std::is_same_v<T, float>) {
#ifdef LSTMKIT_PANEL_GEMM
      if (panels && (beta == 0 || beta == 1)) {
        panel_gemm(M, N, K, A, lda, packed.data_ptr<float>(), C, ldc, beta == 1);
        return;
      }
#endif
      if (packed.defined() && !panels) {
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, M, N, K, A, lda, packed.data_ptr<float>(), N,
                            static_cast<float>(beta), C, ldc);
        return;
      }
    }
    gemm_rm<T>(w_transposed, M, N, K, A, lda, W, ldw, beta, C, ldc);
  }
};

}  // namespace lstmkit
