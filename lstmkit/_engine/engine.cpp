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

#include <torch/extension.h>
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

using torch::Tensor;

namespace {

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
// leaves 1, 2 or 4 rows over, those go in pairs through the two-row kernel (the per-step products
// here have 32 or 16 rows per thread, and padding them to 36 or 18 wasted 11% of the work). Other
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
bool use_panel_gemm = true;

int64_t own_gemm(int64_t on) {
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
// where neither is available (no MKL, double, bfloat16).
template <typename T>
struct PackedWeight {
  bool w_transposed;
  int64_t M, N, K, ldw;
  const T* W;
  Tensor packed;
  bool panels = false;
  PackedWeight(bool w_transposed_, int64_t M_, int64_t N_, int64_t K_, const T* W_, int64_t ldw_)
      : w_transposed(w_transposed_), M(M_), N(N_), K(K_), ldw(ldw_), W(W_) {
    if constexpr (std::is_same_v<T, float>) {
      if (!W || M <= 0 || N <= 0 || K <= 0) return;
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

struct Rows {
  const int64_t* len = nullptr;   // nullptr: all rows valid at every step
  inline bool valid(int64_t b, int64_t t) const { return len == nullptr || t < len[b]; }
};

// An optional tensor argument: Python passes an empty tensor for "absent".
inline bool has(const Tensor& t) { return t.defined() && t.numel() > 0; }

Rows rows_of(const Tensor& lengths) {
  Rows r;
  if (has(lengths)) r.len = lengths.data_ptr<int64_t>();
  return r;
}

// For the rows valid at step t, dst row = src row (n values); a row past its length keeps dst, the
// gradient of the state it carries unchanged.
template <typename T>
inline void take_valid_rows(const Rows& rows, int64_t t, int64_t b0, int64_t b1, T* dst, const T* src, int64_t n) {
  for (int64_t b = b0; b < b1; ++b)
    if (rows.valid(b, t)) std::memcpy(dst + b * n, src + b * n, n * sizeof(T));
}

// The state before every step, (B, T, W): init (B, W) then seq (B, T, W) without its last step.
Tensor states_before(const Tensor& init, const Tensor& seq) {
  const int64_t T = seq.size(1);
  return at::cat({init.unsqueeze(1), seq.narrow(1, 0, T - 1)}, 1);
}

// d^T s for d (R, N) and s (R, W) over many rows R: a weight's gradient. MKL takes the product
// with a narrow result (W or N below 16, e.g. a handful of input features) up to 7x slower in one
// orientation than in the other, so the narrow side goes first and the (small) result is transposed.
Tensor weight_grad(const Tensor& d, const Tensor& s) {
  if (s.size(1) < 16 && s.size(1) < d.size(1)) return at::mm(s.t(), d).t().contiguous();
  return at::mm(d.t(), s);
}

// The gradient of a weight that multiplies the state before each step: the sum over the B * T
// rows (b, t) of d[b, t]^T s[b, t], where s[b, 0] = init[b] and s[b, t] = seq[b, t - 1]; d (B, T, N)
// and seq (B, T, W) batch-first (d may be a column slice of a contiguous buffer), init (B, W).
// Returns (N, W) without copying the states: one GEMM pairs row r of d with row r - 1 of seq
// over the flattened B * T rows, which is right for every t > 0 and pairs d[b, 0] with
// seq[b - 1, T - 1] for b > 0; a B-row GEMM puts init[b] - seq[b - 1, T - 1] in its place.
Tensor grad_through_states(const Tensor& d, const Tensor& init, const Tensor& seq) {
  const int64_t B = d.size(0), T = d.size(1), N = d.size(2), W = seq.size(2);
  const auto d2 = d.reshape({B * T, N});     // a view: d's first two dims are contiguous
  const auto s2 = seq.view({B * T, W});
  auto fix = init.clone();
  if (B > 1) fix.narrow(0, 1, B - 1).sub_(seq.select(1, T - 1).narrow(0, 0, B - 1));
  auto out = weight_grad(d2.narrow(0, 1, B * T - 1), s2.narrow(0, 0, B * T - 1));
  out.add_(weight_grad(d.select(1, 0), fix));
  return out;
}

// dst += src (n values), added in acc.
template <typename acc, typename S, typename D>
inline void add_row(int64_t n, const S* __restrict__ src, D* __restrict__ dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = acc(dst[k]) + acc(src[k]);
}

// Per-block partial sums (a kernel's bias gradients), kept by the block's first row and added in
// row order: the result does not depend on which thread ran which block or when.
template <typename acc>
struct BlockSums {
  int64_t n;
  std::vector<std::vector<acc>> parts;
  BlockSums(int64_t B, int64_t n_) : n(n_), parts(n_ ? B : 0) {}
  template <typename V>
  void put(int64_t b0, const std::vector<V>& v) {
    if (n) parts[b0].assign(v.begin(), v.end());
  }
  Tensor total(const at::TensorOptions& options) const {
    std::vector<acc> s(n, acc(0));
    for (const auto& part : parts)
      for (size_t k = 0; k < part.size(); ++k) s[k] += part[k];
    return at::tensor(at::ArrayRef<acc>(s), at::TensorOptions().dtype(c10::CppTypeToScalarType<acc>::value))
        .to(options.dtype());
  }
};

Tensor zeros_like_or(const Tensor& t, const Tensor& like) {
  return has(t) ? t : at::zeros_like(like);
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
constexpr size_t kHugePage = size_t(2) << 20;

// Freed whole-sequence mappings, kept for the next call instead of going back to the kernel: a
// training loop allocates the same buffers at every step, and a fresh mapping costs page faults
// and the kernel's zeroing of every page, then writes that miss every cache. With other models
// in the process (the benchmark's order), glibc's own reuse made nn.LSTM's and at::empty's
// buffers faster than fresh mappings: lstm training 83-86 ms against 99-104 on (500,32,64,128).
// Holds at most `capacity` bytes (LSTMKIT_ENGINE_CACHE_MB, default 1024; 0 turns it off), oldest
// first out; empty_cache() hands everything back. Never destroyed: tensors may be freed during
// interpreter teardown.
class MappingCache {
 public:
  struct Mapping { void* base; size_t length; };

  static MappingCache& get() {
    static auto* cache = new MappingCache();
    return *cache;
  }
  // A cached mapping of at least `length` bytes and at most a quarter (plus a page) more, the
  // smallest such; {nullptr, 0} if none.
  Mapping take(size_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      const size_t n = free_[i].length;
      if (n >= length && n <= length + length / 4 + kHugePage && (best == free_.size() || n < free_[best].length))
        best = i;
    }
    if (best == free_.size()) return {nullptr, 0};
    const Mapping m = free_[best];
    free_.erase(free_.begin() + best);
    cached_ -= m.length;
    return m;
  }
  void give(Mapping m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (m.length <= capacity_) {
        free_.push_back(m);
        cached_ += m.length;
        m = {nullptr, 0};
      }
    }
    if (m.base) munmap(m.base, m.length);     // bigger than the whole cache: straight back
    trim();
  }
  // Sets the capacity in bytes (n >= 0), evicting what no longer fits; returns the previous one.
  int64_t set_capacity(int64_t n) {
    int64_t previous;
    {
      std::lock_guard<std::mutex> lock(mu_);
      previous = static_cast<int64_t>(capacity_);
      if (n >= 0) capacity_ = static_cast<size_t>(n);
    }
    trim();
    return previous;
  }
  // Hands every cached mapping back to the kernel; returns the bytes released.
  int64_t empty() {
    std::vector<Mapping> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out.swap(free_);
      cached_ = 0;
    }
    int64_t bytes = 0;
    for (const auto& e : out) { munmap(e.base, e.length); bytes += static_cast<int64_t>(e.length); }
    return bytes;
  }
  std::vector<int64_t> info() {
    std::lock_guard<std::mutex> lock(mu_);
    return {static_cast<int64_t>(free_.size()), static_cast<int64_t>(cached_), static_cast<int64_t>(capacity_)};
  }

 private:
  MappingCache() {
    const char* env = std::getenv("LSTMKIT_ENGINE_CACHE_MB");
    const long mb = env ? std::strtol(env, nullptr, 10) : 1024;
    capacity_ = static_cast<size_t>(std::max(0L, mb)) << 20;
  }
  // Hands back the oldest mappings until the cache fits its capacity.
  void trim() {
    std::vector<Mapping> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (cached_ > capacity_) {
        out.push_back(free_.front());
        cached_ -= free_.front().length;
        free_.erase(free_.begin());
      }
    }
    for (const auto& e : out) munmap(e.base, e.length);
  }
  std::mutex mu_;
  std::vector<Mapping> free_;     // oldest first
  size_t cached_ = 0, capacity_ = 0;
};
#endif

// The engine's memory cache, for Python: [mappings, bytes, capacity]; set_cache_capacity(n >= 0)
// sets the capacity in bytes and returns the previous one; empty_cache() hands the cached
// mappings back and returns the bytes released.
std::vector<int64_t> cache_info() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return MappingCache::get().info();
#else
  return {0, 0, 0};
#endif
}

int64_t set_cache_capacity(int64_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return MappingCache::get().set_capacity(n);
#else
  return 0;
#endif
}

int64_t empty_cache() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return MappingCache::get().empty();
#else
  return 0;
#endif
}

// A tensor for one of a call's whole-sequence buffers (saved activations, gate gradients). A
// buffer of 4 MiB or more is its own mapping, 2 MiB-aligned and marked for transparent huge pages
// (what PyTorch does for every allocation under THP_MEM_ALLOC_ENABLE=1), so that it faults in 2
// MiB at a time rather than 4 KiB (faulting fresh 4 KiB pages in took 10-15% of a training step:
// glibc hands such blocks straight back to the kernel when a call frees them). When the tensor is
// freed its mapping goes to the MappingCache, from which the next call's buffers are taken. Like
// at::empty, the memory is filled with NaN when torch is asked to fill uninitialised memory.
// Elsewhere, or if mapping fails: at::empty. huge = false (a forward pass that saves nothing):
// at::empty, whose freed blocks glibc does reuse when a call frees them at once.
Tensor big_empty(at::IntArrayRef sizes, const at::TensorOptions& options, bool huge = true) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  int64_t numel = 1;
  for (auto n : sizes) numel *= n;
  const size_t bytes = size_t(numel) * options.dtype().itemsize();
  if (huge && options.device().is_cpu() && bytes >= 2 * kHugePage) {
    const size_t length = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;     // room to align
    auto& cache = MappingCache::get();
    MappingCache::Mapping m = cache.take(length);
    if (!m.base) {
      void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base != MAP_FAILED) {
        m = {base, length};
        madvise(base, length, MADV_HUGEPAGE);
      }
    }
    if (m.base) {
      auto aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(m.base) + kHugePage - 1) & ~(kHugePage - 1));
      auto out = at::from_blob(aligned, sizes, [m](void*) { MappingCache::get().give(m); }, options);
      auto& ctx = at::globalContext();
      if (ctx.deterministicAlgorithms() && ctx.deterministicFillUninitializedMemory()) {
        out.fill_(std::numeric_limits<double>::quiet_NaN());
      }
      return out;
    }
  }
#endif
  return at::empty(sizes, options);
}

// --------------------------------------------------------------------------------------------
// Gated LSTM: lstm, peephole and the eight Greff variants.
//   cfg = {has_i, has_f (own parameters), coupled (f = 1 - i), has_o, act_g (0 tanh, 1 identity),
//          act_h (0 tanh, 1 identity), peepholes, gate_recurrence}
// Gate rows of xp / w_hh: the present gates among (i, f, g, o) in that order, H rows each.
// With gate_recurrence, the K gates with parameters among (i, f, o) feed w_gg (K*H, K*H) and
// their previous activations are the third state a (B, K*H).
// --------------------------------------------------------------------------------------------

struct GatedCfg {
  bool has_i, has_f, coupled, has_o, id_g, id_h, peep, fgr;
  int64_t H, G, K, oi = -1, of = -1, og = -1, oo = -1;   // column offsets in the gate rows
  int64_t ki = -1, kf = -1, ko = -1;                      // offsets in the recurrent gates a
  GatedCfg(const std::vector<int64_t>& c, int64_t H_) : H(H_) {
    has_i = c[0]; has_f = c[1] && !c[2]; coupled = c[2]; has_o = c[3];
    id_g = c[4]; id_h = c[5]; peep = c[6]; fgr = c[7];
    int64_t off = 0;
    if (has_i) { oi = off; off += H; }
    if (has_f) { of = off; off += H; }
    og = off; off += H;
    if (has_o) { oo = off; off += H; }
    G = off / H;
    int64_t k = 0;
    if (has_i) { ki = k; k += H; }
    if (has_f) { kf = k; k += H; }
    if (has_o) { ko = k; k += H; }
    K = k / H;
  }
};

// Split the batch into one block of rows per thread; f(b0, b1) runs the whole recurrence for rows
// [b0, b1) (rows never interact), so threads meet once per call, not at every step. A problem too
// small to pay for starting a thread runs in one block: work_per_row is the multiply-adds of one
// row over the whole call. Inside f, BLAS runs single-threaded (MKL does so within a parallel
// region). min_block_work: the multiply-adds per block below which a second thread costs more
// than it saves (about 20 us of work); block_work() changes it (the tests split tiny batches).
int64_t min_block_work = 1 << 20;

int64_t block_work(int64_t n) {
  const int64_t previous = min_block_work;
  if (n > 0) min_block_work = n;
  return previous;
}

template <typename F>
inline void for_batch_blocks(int64_t B, int64_t work_per_row, const F& f) {
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>({threads, B, B * work_per_row / min_block_work}));
  if (blocks == 1) {
    // one block: BLAS on one thread too, where the problem is too small to share
    const bool small = threads > 1 && B * work_per_row < threads * min_block_work;
    const int previous = small && MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : -1;
    f(0, B);
    if (previous >= 0) MKL_Set_Num_Threads_Local(previous);
    return;
  }
  at::parallel_for(0, B, (B + blocks - 1) / blocks, f);
}

// The n values of an optional vector parameter in the accumulation type; zeros where it is absent.
template <typename acc, typename scalar_t>
std::vector<acc> as_acc(const Tensor& t, int64_t n) {
  std::vector<acc> v(n, acc(0));
  if (has(t)) {
    const scalar_t* p = t.data_ptr<scalar_t>();
    for (int64_t k = 0; k < n; ++k) v[k] = p[k];
  }
  return v;
}

// The peepholes of the present gates, [p_i, p_f, p_o] (H each; zeros where a gate or its peephole is absent).
template <typename acc, typename scalar_t>
std::vector<acc> peepholes_as_acc(const GatedCfg& cfg, const Tensor& p_i, const Tensor& p_f, const Tensor& p_o) {
  std::vector<acc> v;
  const int64_t H = cfg.H;
  for (const auto& [p, on] : {std::pair<const Tensor&, bool>{p_i, cfg.peep && cfg.has_i},
                              std::pair<const Tensor&, bool>{p_f, cfg.peep && cfg.has_f},
                              std::pair<const Tensor&, bool>{p_o, cfg.peep && cfg.has_o}}) {
    const auto part = on ? as_acc<acc, scalar_t>(p, H) : std::vector<acc>(H, acc(0));
    v.insert(v.end(), part.begin(), part.end());
  }
  return v;
}

std::vector<Tensor> gated_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& p_i,
                                  const Tensor& p_f, const Tensor& p_o, const Tensor& w_gg, const Tensor& bias,
                                  const Tensor& h0, const Tensor& c0, const Tensor& a0, const Tensor& lengths,
                                  std::vector<int64_t> cfg_, bool save) {
  // Batch-first: x (B, T, I); each step's pre-activations are x_t W_ih^T + h W_hh^T (two products
  // into one buffer: no (B, T, GH) projection is written or read) + bias; Y, C (B, T, H); Gates (B, T, GH).
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1);
  const GatedCfg cfg(cfg_, H);
  const int64_t GH = cfg.G * H, KH = cfg.K * H;
  auto Y = big_empty({B, T, H}, x.options(), save);
  auto C = big_empty({B, T, H}, x.options(), save);
  auto Gates = big_empty({B, save ? T : 1, GH}, x.options(), save);
  auto A = cfg.fgr ? big_empty({B, T, KH}, x.options(), save) : Tensor();
  auto Z = at::empty({B, GH}, x.options());                          // x_t W_ih^T + h W_hh^T
  auto ZG = cfg.fgr ? at::empty({B, KH}, x.options()) : Tensor();   // previous gates -> gate rows
  const Rows rows = rows_of(lengths);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  const auto WG = cfg.fgr ? w_gg.contiguous() : Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "gated_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto peep = peepholes_as_acc<acc, scalar_t>(cfg, p_i, p_f, p_o);   // i, f, o; zeros where absent
    const acc* pi = peep.data();
    const acc* pf = pi + H;
    const acc* po = pf + H;
    const scalar_t* X = x.data_ptr<scalar_t>();
    scalar_t* YP = Y.data_ptr<scalar_t>();
    scalar_t* CP = C.data_ptr<scalar_t>();
    scalar_t* GP = Gates.data_ptr<scalar_t>();
    scalar_t* AP = cfg.fgr ? A.data_ptr<scalar_t>() : nullptr;
    scalar_t* z = Z.data_ptr<scalar_t>();
    scalar_t* zg = cfg.fgr ? ZG.data_ptr<scalar_t>() : nullptr;
    const scalar_t* w = W.data_ptr<scalar_t>();
    const auto bias_acc = as_acc<acc, scalar_t>(bias, GH);
    const acc* bs = bias_acc.data();
    for_batch_blocks(B, T * GH * H, [&](int64_t b0, int64_t b1) {
    std::vector<acc> scratch(6 * H);
    const int64_t M = b1 - b0;
    const PackedWeight<scalar_t> Wp(true, M, GH, H, w, H);
    const PackedWeight<scalar_t> Wx(true, M, GH, I, WI.data_ptr<scalar_t>(), I);
    const PackedWeight<scalar_t> WGp(true, M, KH, KH, cfg.fgr ? WG.data_ptr<scalar_t>() : nullptr, KH);
    for (int64_t t = 0; t < T; ++t) {
      // row b of a (B, T, W) sequence at step t is at base + t * W + b * T * W; of a state (B, W), b * W
      const int64_t hs = t ? T * H : H, as = t ? T * KH : KH;
      const scalar_t* hp = t ? YP + (t - 1) * H : h0.data_ptr<scalar_t>();
      const scalar_t* cp = t ? CP + (t - 1) * H : c0.data_ptr<scalar_t>();
      const scalar_t* ap = cfg.fgr ? (t ? AP + (t - 1) * KH : a0.data_ptr<scalar_t>()) : nullptr;
      Wx.product(X + t * I + b0 * T * I, T * I, 0.0, z + b0 * GH, GH);
      Wp.product(hp + b0 * hs, hs, 1.0, z + b0 * GH, GH);
      if (cfg.fgr) WGp.product(ap + b0 * as, as, 0.0, zg + b0 * KH, KH);
      scalar_t* y = YP + t * H;
      scalar_t* c = CP + t * H;
      const int64_t gss = save ? T * GH : GH;
      scalar_t* gs = GP + (save ? t : 0) * GH;
      scalar_t* a = cfg.fgr ? AP + t * KH : nullptr;
      auto row = [&](int64_t b, acc* sc) {
        scalar_t* __restrict__ yb = y + b * T * H;
        scalar_t* __restrict__ cb = c + b * T * H;
        const scalar_t* __restrict__ cpb = cp + b * hs;
        if (!rows.valid(b, t)) {
          const scalar_t* hpb = hp + b * hs;
          for (int64_t k = 0; k < H; ++k) { yb[k] = hpb[k]; cb[k] = cpb[k]; }
          if (a) for (int64_t k = 0; k < KH; ++k) a[b * T * KH + k] = ap[b * as + k];
          return;
        }
        scalar_t* __restrict__ zb = z + b * GH;
        for (int64_t k = 0; k < GH; ++k) zb[k] = acc(zb[k]) + bs[k];   // pre-activations
        acc* __restrict__ I = sc;
        acc* __restrict__ Fg = sc + H;
        acc* __restrict__ G = sc + 2 * H;
        acc* __restrict__ O = sc + 3 * H;
        acc* __restrict__ Cp = sc + 4 * H;
        acc* __restrict__ R = sc + 5 * H;       // gate-recurrence term of the gate at hand
        for (int64_t k = 0; k < H; ++k) Cp[k] = cpb[k];
        auto rec = [&](int64_t off) {
          if (zg) { for (int64_t k = 0; k < H; ++k) R[k] = zg[b * KH + off + k]; }
          else { for (int64_t k = 0; k < H; ++k) R[k] = 0; }
        };
        if (cfg.has_i) {
          rec(cfg.ki);
          for (int64_t k = 0; k < H; ++k) I[k] = sigm<acc>(acc(zb[cfg.oi + k]) + R[k] + pi[k] * Cp[k]);
        } else {
          for (int64_t k = 0; k < H; ++k) I[k] = 1;
        }
        if (cfg.coupled) {
          for (int64_t k = 0; k < H; ++k) Fg[k] = 1 - I[k];
        } else if (cfg.has_f) {
          rec(cfg.kf);
          for (int64_t k = 0; k < H; ++k) Fg[k] = sigm<acc>(acc(zb[cfg.of + k]) + R[k] + pf[k] * Cp[k]);
        } else {
          for (int64_t k = 0; k < H; ++k) Fg[k] = 1;
        }
        if (cfg.id_g) { for (int64_t k = 0; k < H; ++k) G[k] = zb[cfg.og + k]; }
        else { for (int64_t k = 0; k < H; ++k) G[k] = tanh_<acc>(acc(zb[cfg.og + k])); }
        for (int64_t k = 0; k < H; ++k) Cp[k] = G[k] * I[k] + Cp[k] * Fg[k];     // Cp now holds c_t
        if (cfg.has_o) {
          rec(cfg.ko);
          for (int64_t k = 0; k < H; ++k) O[k] = sigm<acc>(acc(zb[cfg.oo + k]) + R[k] + po[k] * Cp[k]);
        } else {
          for (int64_t k = 0; k < H; ++k) O[k] = 1;
        }
        if (cfg.id_h) { for (int64_t k = 0; k < H; ++k) yb[k] = Cp[k] * O[k]; }
        else { for (int64_t k = 0; k < H; ++k) yb[k] = tanh_<acc>(Cp[k]) * O[k]; }
        for (int64_t k = 0; k < H; ++k) cb[k] = Cp[k];
        scalar_t* __restrict__ gb = gs + b * gss;
        if (cfg.has_i) for (int64_t k = 0; k < H; ++k) gb[cfg.oi + k] = I[k];
        if (cfg.has_f) for (int64_t k = 0; k < H; ++k) gb[cfg.of + k] = Fg[k];
        for (int64_t k = 0; k < H; ++k) gb[cfg.og + k] = G[k];
        if (cfg.has_o) for (int64_t k = 0; k < H; ++k) gb[cfg.oo + k] = O[k];
        if (a) {
          scalar_t* ab = a + b * T * KH;
          if (cfg.has_i) for (int64_t k = 0; k < H; ++k) ab[cfg.ki + k] = I[k];
          if (cfg.has_f) for (int64_t k = 0; k < H; ++k) ab[cfg.kf + k] = Fg[k];
          if (cfg.has_o) for (int64_t k = 0; k < H; ++k) ab[cfg.ko + k] = O[k];
        }
      };
      for (int64_t b = b0; b < b1; ++b) row(b, scratch.data());
    }
    });
  });
  return {Y, C, cfg.fgr ? A : Tensor(), Gates};
}

// A logistic gate's backward over one row of H: dz (in: the gradient of the activation a; out:
// of the pre-activation) *= a (1 - a), stored to dz_out; dc += dz * p (its peephole, zeros where
// it has none). A function with restrict parameters, so that GCC vectorizes it: inside the row
// lambda, with eight arrays in play, this loop stayed scalar.
template <typename acc, typename scalar_t>
inline void logistic_gate_backward(int64_t H, acc* __restrict__ dz, const acc* __restrict__ a,
                                   const acc* __restrict__ p, acc* __restrict__ dc, scalar_t* __restrict__ dz_out) {
  for (int64_t k = 0; k < H; ++k) {
    dz[k] = dz[k] * a[k] * (1 - a[k]);
    dc[k] += dz[k] * p[k];
    dz_out[k] = dz[k];
  }
}

std::vector<Tensor> gated_backward(const Tensor& dY, const Tensor& dhT, const Tensor& dcT, const Tensor& daT,
                                   const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& p_i,
                                   const Tensor& p_f, const Tensor& p_o, const Tensor& w_gg, const Tensor& bias,
                                   const Tensor& h0, const Tensor& c0, const Tensor& a0, const Tensor& Y,
                                   const Tensor& C, const Tensor& A, const Tensor& Gates, const Tensor& lengths,
                                   std::vector<int64_t> cfg_, bool need_dx) {
  // Batch-first like gated_forward; dY (B, T, H) or empty. Each step's input gradient dx_t = dz_t W_ih
  // is one more product in the step (need_dx: else none); returns dx (B, T, I) and every parameter's gradient.
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), I = x.size(2);
  const GatedCfg cfg(cfg_, H);
  const int64_t GH = cfg.G * H, KH = cfg.K * H;
  auto dZ = big_empty({B, T, GH}, Y.options());
  auto dX = need_dx ? big_empty({B, T, I}, Y.options()) : Tensor();
  const auto WI = w_ih.contiguous();
  auto dZrec = cfg.fgr ? big_empty({B, T, KH}, Y.options()) : Tensor();
  auto dh = zeros_like_or(dhT, h0).clone();
  auto dc = zeros_like_or(dcT, c0).clone();
  auto da = cfg.fgr ? zeros_like_or(daT, a0).clone() : Tensor();
  auto tmp_h = at::empty({B, H}, Y.options());
  auto tmp_a = cfg.fgr ? at::empty({B, KH}, Y.options()) : Tensor();
  const Rows rows = rows_of(lengths);
  const bool has_dY = has(dY);
  const auto W = w_hh.contiguous();
  const auto WG = cfg.fgr ? w_gg.contiguous() : Tensor();
  BlockSums<double> sums(B, has(bias) ? GH : 0);    // the bias gradient: column sums of dZ

  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "gated_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto peep = peepholes_as_acc<acc, scalar_t>(cfg, p_i, p_f, p_o);
    const acc* pi = peep.data();
    const acc* pf = pi + H;
    const acc* po = pf + H;
    const scalar_t* CP = C.data_ptr<scalar_t>();
    const scalar_t* GP = Gates.data_ptr<scalar_t>();
    const scalar_t* DY = has_dY ? dY.data_ptr<scalar_t>() : nullptr;
    scalar_t* DZ_ = dZ.data_ptr<scalar_t>();
    scalar_t* DZR = cfg.fgr ? dZrec.data_ptr<scalar_t>() : nullptr;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dap = cfg.fgr ? da.data_ptr<scalar_t>() : nullptr;
    scalar_t* th_all = tmp_h.data_ptr<scalar_t>();
    scalar_t* ta_all = cfg.fgr ? tmp_a.data_ptr<scalar_t>() : nullptr;
    for_batch_blocks(B, T * GH * H, [&](int64_t b0, int64_t b1) {
    std::vector<acc> scratch(10 * H);
    std::vector<acc> sum(sums.n, acc(0));
    acc* __restrict__ s = sum.data();
    const int64_t M = b1 - b0;
    const PackedWeight<scalar_t> Wp(false, M, H, GH, W.data_ptr<scalar_t>(), H);
    const PackedWeight<scalar_t> Wx(false, M, I, GH, need_dx ? WI.data_ptr<scalar_t>() : nullptr, I);
    const PackedWeight<scalar_t> WGp(false, M, KH, KH, cfg.fgr ? WG.data_ptr<scalar_t>() : nullptr, KH);
    scalar_t* DX = need_dx ? dX.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t cs = t ? T * H : H;
      const scalar_t* cp = t ? CP + (t - 1) * H : c0.data_ptr<scalar_t>();
      const scalar_t* cc = CP + t * H;
      const scalar_t* gs = GP + t * GH;
      const scalar_t* dy = DY ? DY + t * H : nullptr;
      scalar_t* dz = DZ_ + t * GH;
      scalar_t* dzr = DZR ? DZR + t * KH : nullptr;
      auto row = [&](int64_t b, acc* sc) {
        scalar_t* __restrict__ dzb = dz + b * T * GH;
        scalar_t* __restrict__ dhb = dhp + b * H;
        scalar_t* __restrict__ dcb = dcp + b * H;
        if (dy) add_row<acc>(H, dy + b * T * H, dhb);
        if (!rows.valid(b, t)) {     // state carried: gradients pass through, no gate gradient
          for (int64_t k = 0; k < GH; ++k) dzb[k] = 0;
          if (dzr) for (int64_t k = 0; k < KH; ++k) dzr[b * T * KH + k] = 0;
          return;
        }
        const scalar_t* __restrict__ gb = gs + b * T * GH;
        acc* __restrict__ I = sc;
        acc* __restrict__ Fg = sc + H;
        acc* __restrict__ G = sc + 2 * H;
        acc* __restrict__ O = sc + 3 * H;
        acc* __restrict__ HC = sc + 4 * H;
        acc* __restrict__ DC = sc + 5 * H;
        acc* __restrict__ DI = sc + 6 * H;
        acc* __restrict__ DF = sc + 7 * H;
        acc* __restrict__ DA = sc + 8 * H;      // gradient from the next step's gate recurrence
        acc* __restrict__ DZ = sc + 9 * H;
        const scalar_t* __restrict__ ccb = cc + b * T * H;
        const scalar_t* __restrict__ cpb = cp + b * cs;
        if (cfg.has_i) { for (int64_t k = 0; k < H; ++k) I[k] = gb[cfg.oi + k]; } else { for (int64_t k = 0; k < H; ++k) I[k] = 1; }
        if (cfg.coupled) { for (int64_t k = 0; k < H; ++k) Fg[k] = 1 - I[k]; }
        else if (cfg.has_f) { for (int64_t k = 0; k < H; ++k) Fg[k] = gb[cfg.of + k]; }
        else { for (int64_t k = 0; k < H; ++k) Fg[k] = 1; }
        for (int64_t k = 0; k < H; ++k) G[k] = gb[cfg.og + k];
        if (cfg.has_o) { for (int64_t k = 0; k < H; ++k) O[k] = gb[cfg.oo + k]; } else { for (int64_t k = 0; k < H; ++k) O[k] = 1; }
        // through h = act_h(c) * o into c
        if (cfg.id_h) {
          for (int64_t k = 0; k < H; ++k) { HC[k] = ccb[k]; DC[k] = acc(dcb[k]) + acc(dhb[k]) * O[k]; }
        } else {
          for (int64_t k = 0; k < H; ++k) {
            HC[k] = tanh_<acc>(acc(ccb[k]));
            DC[k] = acc(dcb[k]) + acc(dhb[k]) * O[k] * (1 - HC[k] * HC[k]);
          }
        }
        auto load_da = [&](int64_t off) {
          if (dap) { for (int64_t k = 0; k < H; ++k) DA[k] = dap[b * KH + off + k]; }
          else { for (int64_t k = 0; k < H; ++k) DA[k] = 0; }
        };
        if (cfg.has_o) {
          load_da(cfg.ko);
          for (int64_t k = 0; k < H; ++k) DZ[k] = acc(dhb[k]) * HC[k] + DA[k];
          logistic_gate_backward<acc>(H, DZ, O, po, DC, dzb + cfg.oo);   // the output gate peeks at c_t
          if (dzr) for (int64_t k = 0; k < H; ++k) dzr[b * T * KH + cfg.ko + k] = DZ[k];
        }
        if (cfg.has_f) load_da(cfg.kf); else for (int64_t k = 0; k < H; ++k) DA[k] = 0;
        for (int64_t k = 0; k < H; ++k) DF[k] = DC[k] * acc(cpb[k]) + DA[k];
        if (cfg.has_i) load_da(cfg.ki); else for (int64_t k = 0; k < H; ++k) DA[k] = 0;
        for (int64_t k = 0; k < H; ++k) DI[k] = DC[k] * G[k] + DA[k];
        if (cfg.coupled) for (int64_t k = 0; k < H; ++k) DI[k] -= DF[k];     // f = 1 - i
        if (cfg.id_g) { for (int64_t k = 0; k < H; ++k) dzb[cfg.og + k] = DC[k] * I[k]; }
        else { for (int64_t k = 0; k < H; ++k) dzb[cfg.og + k] = DC[k] * I[k] * (1 - G[k] * G[k]); }
        for (int64_t k = 0; k < H; ++k) DC[k] *= Fg[k];                       // now dc_{t-1}
        if (cfg.has_i) {
          logistic_gate_backward<acc>(H, DI, I, pi, DC, dzb + cfg.oi);
          if (dzr) for (int64_t k = 0; k < H; ++k) dzr[b * T * KH + cfg.ki + k] = DI[k];
        }
        if (cfg.has_f) {
          logistic_gate_backward<acc>(H, DF, Fg, pf, DC, dzb + cfg.of);
          if (dzr) for (int64_t k = 0; k < H; ++k) dzr[b * T * KH + cfg.kf + k] = DF[k];
        }
        for (int64_t k = 0; k < H; ++k) dcb[k] = DC[k];
        if (s) add_row<acc>(GH, dzb, s);
      };
      for (int64_t b = b0; b < b1; ++b) row(b, scratch.data());
      // gradient of the previous state: one GEMM (rows past their length have dz = 0 and keep dh)
      Wp.product(dz + b0 * T * GH, T * GH, 0.0, th_all + b0 * H, H);
      if (DX) Wx.product(dz + b0 * T * GH, T * GH, 0.0, DX + t * I + b0 * T * I, T * I);
      if (cfg.fgr) WGp.product(dzr + b0 * T * KH, T * KH, 0.0, ta_all + b0 * KH, KH);
      take_valid_rows(rows, t, b0, b1, dhp, th_all, H);
      if (ta_all) take_valid_rows(rows, t, b0, b1, dap, ta_all, KH);
    }
    sums.put(b0, sum);
    });
  });
  auto dw_hh = grad_through_states(dZ, h0, Y);
  auto dw_ih = weight_grad(dZ.view({B * T, GH}), x.reshape({B * T, I}));
  auto peep_grad = [&](int64_t off, const Tensor& cstates) {
    return (dZ.narrow(2, off, H) * cstates).sum({0, 1});
  };
  const auto Cprev = cfg.peep && (cfg.has_i || cfg.has_f) ? states_before(c0, C) : Tensor();
  Tensor dp_i = cfg.peep && cfg.has_i ? peep_grad(cfg.oi, Cprev) : Tensor();
  Tensor dp_f = cfg.peep && cfg.has_f ? peep_grad(cfg.of, Cprev) : Tensor();
  Tensor dp_o = cfg.peep && cfg.has_o ? peep_grad(cfg.oo, C) : Tensor();
  Tensor dw_gg = cfg.fgr ? grad_through_states(dZrec, a0, A) : Tensor();
  Tensor dbias = has(bias) ? sums.total(Y.options()) : Tensor();
  return {dX, dw_ih, dw_hh, dp_i, dp_f, dp_o, dw_gg, dbias, dh, dc, cfg.fgr ? da : Tensor()};
}

// --------------------------------------------------------------------------------------------
// Layer-norm LSTM: z = LN(x W_ih^T) * gamma_ih + LN(h W_hh^T) * gamma_hh + b; gates (i, f, g, o);
// h = o * tanh(LN(c) * gamma_c + beta_c).
// --------------------------------------------------------------------------------------------

// The sum of f(k) over k < n in eight interleaved partial sums: independent chains that the
// compiler keeps in one vector register (a plain running sum is one long dependency chain, and
// vectorizing it would need reassociation); the order is fixed, so results do not depend on flags.
template <typename acc, typename F>
LSTMKIT_INLINE acc sum8(int64_t n, const F& f) {
  acc s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) s[j] += f(k + j);
  acc total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; k < n; ++k) total += f(k);
  return total;
}

template <typename acc, typename scalar_t>
inline void ln_row(const scalar_t* __restrict__ x, int64_t n, acc eps, acc* __restrict__ xhat_out, acc& rstd) {
  const acc mean = sum8<acc>(n, [&](int64_t k) { return acc(x[k]); }) / n;
  const acc var = sum8<acc>(n, [&](int64_t k) { const acc d = acc(x[k]) - mean; return d * d; }) / n;
  rstd = acc(1) / std::sqrt(var + eps);
  for (int64_t k = 0; k < n; ++k) xhat_out[k] = (acc(x[k]) - mean) * rstd;
}

// out = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)): the gradient of a normalised row's input.
template <typename acc, typename O>
inline void ln_row_backward(const acc* __restrict__ dxhat, const acc* __restrict__ xhat, int64_t n, acc rstd,
                            O* __restrict__ out) {
  const acc m1 = sum8<acc>(n, [&](int64_t k) { return dxhat[k]; }) / n;
  const acc m2 = sum8<acc>(n, [&](int64_t k) { return dxhat[k] * xhat[k]; }) / n;
  for (int64_t k = 0; k < n; ++k) out[k] = rstd * (dxhat[k] - m1 - xhat[k] * m2);
}

// The row-wise passes of the layer-norm LSTM, each a function of its own: GCC vectorizes loops
// over several arrays only where it knows they do not overlap, which it takes from restrict
// parameters (not from restrict locals in a lambda: those loops stayed scalar and took 30% of a
// training step).

// a = the activated gates (i, f, g, o) of z = xhat * gx + rhat * gh + b (4H values).
template <typename acc>
inline void lnlstm_gates(int64_t H, const acc* __restrict__ xhat, const acc* __restrict__ rhat,
                         const acc* __restrict__ gx, const acc* __restrict__ gh, const acc* __restrict__ b,
                         acc* __restrict__ a) {
  for (int64_t k = 0; k < 4 * H; ++k) a[k] = xhat[k] * gx[k] + rhat[k] * gh[k] + b[k];
  for (int64_t k = 0; k < 2 * H; ++k) a[k] = sigm<acc>(a[k]);
  for (int64_t k = 2 * H; k < 3 * H; ++k) a[k] = tanh_<acc>(a[k]);
  for (int64_t k = 3 * H; k < 4 * H; ++k) a[k] = sigm<acc>(a[k]);
}

// c = f * c_prev + i * g, into cn (acc) and c_out.
template <typename acc, typename scalar_t>
inline void lnlstm_cell(int64_t H, const acc* __restrict__ a, const scalar_t* __restrict__ c_prev,
                        acc* __restrict__ cn, scalar_t* __restrict__ c_out) {
  for (int64_t k = 0; k < H; ++k) {
    cn[k] = a[H + k] * acc(c_prev[k]) + a[k] * a[2 * H + k];
    c_out[k] = cn[k];
  }
}

// h = o * tanh(chat * gc + bc).
template <typename acc, typename scalar_t>
inline void lnlstm_out(int64_t H, const acc* __restrict__ o, const acc* __restrict__ chat, const acc* __restrict__ gc,
                       const acc* __restrict__ bc, scalar_t* __restrict__ h) {
  for (int64_t k = 0; k < H; ++k) h[k] = o[k] * tanh_<acc>(chat[k] * gc[k] + bc[k]);
}

template <typename acc, typename scalar_t>
inline void store_row(int64_t n, const acc* __restrict__ src, scalar_t* __restrict__ dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = src[k];
}

// Back through h = o * tanh(chat * gc + bc): dz_o (H), the gradient of chat (times gc, into dch)
// and the sums for gamma_c and beta_c; chat is loaded into acc.
template <typename acc, typename scalar_t>
inline void lnlstm_out_backward(int64_t H, const scalar_t* __restrict__ chat_s, const scalar_t* __restrict__ o_s,
                                const scalar_t* __restrict__ dh, const acc* __restrict__ gc,
                                const acc* __restrict__ bc, acc* __restrict__ chat, acc* __restrict__ dzo,
                                acc* __restrict__ dch, acc* __restrict__ s_gc, acc* __restrict__ s_bc) {
  for (int64_t k = 0; k < H; ++k) {
    chat[k] = chat_s[k];
    const acc o = o_s[k];
    const acc tc = tanh_<acc>(chat[k] * gc[k] + bc[k]);
    const acc dhk = dh[k];
    dzo[k] = dhk * tc * o * (1 - o);
    const acc d_cn = dhk * o * (1 - tc * tc);    // gradient of chat * gc + bc
    s_gc[k] += d_cn * chat[k];
    s_bc[k] += d_cn;
    dch[k] = d_cn * gc[k];
  }
}

// Back through c = f * c_prev + i * g with dc = dc_next + dcn (dcn: through LN(c)): dz of i, f, g,
// and dc becomes the gradient of c_prev.
template <typename acc, typename scalar_t>
inline void lnlstm_cell_backward(int64_t H, const scalar_t* __restrict__ a, const scalar_t* __restrict__ c_prev,
                                 const acc* __restrict__ dcn, scalar_t* __restrict__ dc, acc* __restrict__ dz) {
  for (int64_t k = 0; k < H; ++k) {
    const acc i = a[k], f = a[H + k], g = a[2 * H + k];
    const acc dcc = acc(dc[k]) + dcn[k];
    dz[k] = dcc * g * i * (1 - i);
    dz[H + k] = dcc * acc(c_prev[k]) * f * (1 - f);
    dz[2 * H + k] = dcc * i * (1 - g * g);
    dc[k] = dcc * f;
  }
}

// One projection's share of dz (n values): its gain's sum, and dz * gain, the gradient of the
// normalised projection xhat (loaded into acc).
template <typename acc, typename scalar_t>
inline void lnlstm_proj_backward(int64_t n, const acc* __restrict__ dz, const scalar_t* __restrict__ xhat_s,
                                 const acc* __restrict__ gain, acc* __restrict__ s_gain, acc* __restrict__ xhat,
                                 acc* __restrict__ dxhat) {
  for (int64_t k = 0; k < n; ++k) {
    xhat[k] = xhat_s[k];
    s_gain[k] += dz[k] * xhat[k];
    dxhat[k] = dz[k] * gain[k];
  }
}

// Batch-first like the gated kernel, and it projects the input itself: per step x_t W_ih^T and
// h W_hh^T go into two small buffers (each is normalised on its own), so no (B, T, 4H) projection
// is written or read. z = LN(x_t W_ih^T) * gamma_ih + LN(h W_hh^T) * gamma_hh + bias. Saved for the
// backward: the gates, both normalised projections, the normalised cell and the three 1/std.
std::vector<Tensor> layernorm_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                      const Tensor& gamma_ih, const Tensor& gamma_hh, const Tensor& gamma_c,
                                      const Tensor& beta_c, const Tensor& h0, const Tensor& c0,
                                      const Tensor& lengths, double eps_, bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1), GH = 4 * H;
  const int64_t Ts = save ? T : 1;
  auto Y = big_empty({B, T, H}, x.options(), save);
  auto C = big_empty({B, T, H}, x.options(), save);
  auto Gates = big_empty({B, Ts, GH}, x.options(), save);
  auto Xhat = big_empty({B, Ts, GH}, x.options(), save);
  auto Rhat = big_empty({B, Ts, GH}, x.options(), save);
  auto Chat = big_empty({B, Ts, H}, x.options(), save);
  auto Rstd = at::empty({B, Ts, 3}, x.options());         // 1/std of the input's projection, the state's, c
  auto ZX = at::empty({B, GH}, x.options());               // x_t W_ih^T
  auto ZR = at::empty({B, GH}, x.options());               // h W_hh^T
  const Rows rows = rows_of(lengths);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "layernorm_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const acc eps = eps_;
    const auto b_ = as_acc<acc, scalar_t>(bias, GH), gx_ = as_acc<acc, scalar_t>(gamma_ih, GH),
               gh_ = as_acc<acc, scalar_t>(gamma_hh, GH), gc_ = as_acc<acc, scalar_t>(gamma_c, H),
               bc_ = as_acc<acc, scalar_t>(beta_c, H);
    const acc *bs = b_.data(), *gx = gx_.data(), *gh = gh_.data(), *gc = gc_.data(), *bc = bc_.data();
    const scalar_t* X = x.data_ptr<scalar_t>();
    scalar_t* YP = Y.data_ptr<scalar_t>();
    scalar_t* CP = C.data_ptr<scalar_t>();
    scalar_t* zx_all = ZX.data_ptr<scalar_t>();
    scalar_t* zr_all = ZR.data_ptr<scalar_t>();
    const int64_t gss = save ? T * GH : GH, hss = save ? T * H : H, rss = save ? T * 3 : 3;
    for_batch_blocks(B, T * GH * (H + I), [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wp(true, M, GH, H, W.data_ptr<scalar_t>(), H);
      const PackedWeight<scalar_t> Wx(true, M, GH, I, WI.data_ptr<scalar_t>(), I);
      std::vector<acc> buf(3 * GH + 2 * H);
      for (int64_t t = 0; t < T; ++t) {
        // row b of a (B, T, W) sequence at step t is at base + t * W + b * T * W; of a state (B, W), b * W
        const int64_t hs = t ? T * H : H;
        const scalar_t* hp = t ? YP + (t - 1) * H : h0.data_ptr<scalar_t>();
        const scalar_t* cp = t ? CP + (t - 1) * H : c0.data_ptr<scalar_t>();
        Wx.product(X + t * I + b0 * T * I, T * I, 0.0, zx_all + b0 * GH, GH);
        Wp.product(hp + b0 * hs, hs, 0.0, zr_all + b0 * GH, GH);
        const int64_t ts = save ? t : 0;
        scalar_t* gs = Gates.data_ptr<scalar_t>() + ts * GH;
        scalar_t* xh = Xhat.data_ptr<scalar_t>() + ts * GH;
        scalar_t* rh = Rhat.data_ptr<scalar_t>() + ts * GH;
        scalar_t* ch = Chat.data_ptr<scalar_t>() + ts * H;
        scalar_t* rs = Rstd.data_ptr<scalar_t>() + ts * 3;
        for (int64_t b = b0; b < b1; ++b) {
          scalar_t* __restrict__ yb = YP + t * H + b * T * H;
          scalar_t* __restrict__ cb = CP + t * H + b * T * H;
          const scalar_t* __restrict__ cpb = cp + b * hs;
          if (!rows.valid(b, t)) {           // state carried; nothing saved is read for this row
            const scalar_t* __restrict__ hpb = hp + b * hs;
            for (int64_t k = 0; k < H; ++k) { yb[k] = hpb[k]; cb[k] = cpb[k]; }
            continue;
          }
          acc rstd_x, rstd_r, rstd_c;
          acc* __restrict__ xhat = buf.data();              // GH each: the two normalised projections,
          acc* __restrict__ rhat = xhat + GH;               // then the activated gates (i, f, g, o)
          acc* __restrict__ a = rhat + GH;
          acc* __restrict__ cn = a + GH;                    // H: c_t; chat: LN(c_t)
          acc* __restrict__ chat = cn + H;
          ln_row<acc>(zx_all + b * GH, GH, eps, xhat, rstd_x);
          ln_row<acc>(zr_all + b * GH, GH, eps, rhat, rstd_r);
          lnlstm_gates<acc>(H, xhat, rhat, gx, gh, bs, a);
          lnlstm_cell<acc>(H, a, cpb, cn, cb);
          ln_row<acc>(cn, H, eps, chat, rstd_c);
          lnlstm_out<acc>(H, a + 3 * H, chat, gc, bc, yb);
          if (!save) continue;
          store_row<acc>(GH, a, gs + b * gss);
          store_row<acc>(GH, xhat, xh + b * gss);
          store_row<acc>(GH, rhat, rh + b * gss);
          store_row<acc>(H, chat, ch + b * hss);
          rs[b * rss] = rstd_x; rs[b * rss + 1] = rstd_r; rs[b * rss + 2] = rstd_c;
        }
      }
    });
  });
  return {Y, C, Gates, Xhat, Rhat, Chat, Rstd};
}

// Per step: the pointwise derivative back through LN(c) into dz (the gates' pre-activations),
// then back through each projection's LN into dzx and dzr; dx_t = dzx W_ih (need_dx) and the
// previous state's dh = dzr W_hh are the step's products. The gradients of bias and gains are
// summed in the same pass; dW_ih and dW_hh are one GEMM each after the loop.
std::vector<Tensor> layernorm_backward(const Tensor& dY, const Tensor& dhT, const Tensor& dcT, const Tensor& x,
                                       const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                       const Tensor& gamma_ih, const Tensor& gamma_hh, const Tensor& gamma_c,
                                       const Tensor& beta_c, const Tensor& h0, const Tensor& c0, const Tensor& Y,
                                       const Tensor& C, const Tensor& Gates, const Tensor& Xhat, const Tensor& Rhat,
                                       const Tensor& Chat, const Tensor& Rstd, const Tensor& lengths, bool need_dx) {
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), I = x.size(2), GH = 4 * H;
  auto dZX = big_empty({B, T, GH}, Y.options());
  auto dZR = big_empty({B, T, GH}, Y.options());
  auto dX = need_dx ? big_empty({B, T, I}, Y.options()) : Tensor();
  auto dh = zeros_like_or(dhT, h0).clone();
  auto dc = zeros_like_or(dcT, c0).clone();
  auto tmp_h = at::empty({B, H}, Y.options());
  const Rows rows = rows_of(lengths);
  const bool has_dY = has(dY);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  // summed per block: bias (GH), gamma_ih (GH), gamma_hh (GH), gamma_c (H), beta_c (H)
  BlockSums<double> sums(B, 3 * GH + 2 * H);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "layernorm_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto gx_ = as_acc<acc, scalar_t>(gamma_ih, GH), gh_ = as_acc<acc, scalar_t>(gamma_hh, GH),
               gc_ = as_acc<acc, scalar_t>(gamma_c, H), bc_ = as_acc<acc, scalar_t>(beta_c, H);
    const acc *gx = gx_.data(), *gh = gh_.data(), *gc = gc_.data(), *bc = bc_.data();
    const scalar_t* CP = C.data_ptr<scalar_t>();
    const scalar_t* DY = has_dY ? dY.data_ptr<scalar_t>() : nullptr;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* th = tmp_h.data_ptr<scalar_t>();
    scalar_t* DZX = dZX.data_ptr<scalar_t>();
    scalar_t* DZR = dZR.data_ptr<scalar_t>();
    scalar_t* DX = need_dx ? dX.data_ptr<scalar_t>() : nullptr;
    for_batch_blocks(B, T * GH * (H + I), [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wp(false, M, H, GH, W.data_ptr<scalar_t>(), H);
      const PackedWeight<scalar_t> Wx(false, M, I, GH, need_dx ? WI.data_ptr<scalar_t>() : nullptr, I);
      std::vector<acc> buf(5 * GH + 3 * H), sum(sums.n, acc(0));
      acc* __restrict__ s_b = sum.data();
      acc* __restrict__ s_gx = s_b + GH;
      acc* __restrict__ s_gh = s_gx + GH;
      acc* __restrict__ s_gc = s_gh + GH;
      acc* __restrict__ s_bc = s_gc + H;
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t cs = t ? T * H : H;
        const scalar_t* cp = t ? CP + (t - 1) * H : c0.data_ptr<scalar_t>();
        for (int64_t b = b0; b < b1; ++b) {
          scalar_t* __restrict__ dzxb = DZX + t * GH + b * T * GH;
          scalar_t* __restrict__ dzrb = DZR + t * GH + b * T * GH;
          scalar_t* __restrict__ dhb = dhp + b * H;
          scalar_t* __restrict__ dcb = dcp + b * H;
          if (DY) add_row<acc>(H, DY + t * H + b * T * H, dhb);
          if (!rows.valid(b, t)) {     // state carried: gradients pass through, no gate gradient
            for (int64_t k = 0; k < GH; ++k) { dzxb[k] = 0; dzrb[k] = 0; }
            continue;
          }
          const int64_t o = t * GH + b * T * GH;
          const scalar_t* __restrict__ gb = Gates.data_ptr<scalar_t>() + o;
          const scalar_t* __restrict__ xhb = Xhat.data_ptr<scalar_t>() + o;
          const scalar_t* __restrict__ rhb = Rhat.data_ptr<scalar_t>() + o;
          const scalar_t* __restrict__ chb = Chat.data_ptr<scalar_t>() + t * H + b * T * H;
          const scalar_t* __restrict__ rsb = Rstd.data_ptr<scalar_t>() + t * 3 + b * T * 3;
          const scalar_t* __restrict__ cpb = cp + b * cs;
          acc* __restrict__ dz = buf.data();           // GH: the pre-activations' gradient
          acc* __restrict__ xhat = dz + GH;
          acc* __restrict__ rhat = xhat + GH;
          acc* __restrict__ dxh = rhat + GH;            // GH each: gradients of the normalised
          acc* __restrict__ drh = dxh + GH;             // projections, then of the projections
          acc* __restrict__ chat = drh + GH;            // H
          acc* __restrict__ dch = chat + H;             // H: gradient of LN(c)
          acc* __restrict__ dcn = dch + H;              // H: of c through LN(c)
          lnlstm_out_backward<acc>(H, chb, gb + 3 * H, dhb, gc, bc, chat, dz + 3 * H, dch, s_gc, s_bc);
          ln_row_backward<acc>(dch, chat, H, acc(rsb[2]), dcn);
          lnlstm_cell_backward<acc>(H, gb, cpb, dcn, dcb, dz);
          add_row<acc>(GH, dz, s_b);
          lnlstm_proj_backward<acc>(GH, dz, xhb, gx, s_gx, xhat, dxh);
          lnlstm_proj_backward<acc>(GH, dz, rhb, gh, s_gh, rhat, drh);
          ln_row_backward<acc>(dxh, xhat, GH, acc(rsb[0]), dzxb);
          ln_row_backward<acc>(drh, rhat, GH, acc(rsb[1]), dzrb);
        }
        // gradient of the previous state and of the input: one product each (rows past their
        // length have zero gradients here and keep dh)
        Wp.product(DZR + t * GH + b0 * T * GH, T * GH, 0.0, th + b0 * H, H);
        if (DX) Wx.product(DZX + t * GH + b0 * T * GH, T * GH, 0.0, DX + t * I + b0 * T * I, T * I);
        take_valid_rows(rows, t, b0, b1, dhp, th, H);
      }
      sums.put(b0, sum);
    });
  });
  auto dw_hh = grad_through_states(dZR, h0, Y);
  auto dw_ih = weight_grad(dZX.view({B * T, GH}), x.reshape({B * T, I}));
  const auto all = sums.total(Y.options());
  return {dX, dw_ih, dw_hh, all.narrow(0, 0, GH), all.narrow(0, GH, GH), all.narrow(0, 2 * GH, GH),
          all.narrow(0, 3 * GH, H), all.narrow(0, 3 * GH + H, H), dh, dc};
}

// --------------------------------------------------------------------------------------------
// GRU. reset_after (torch.nn.GRU): hp = h W_hh^T + b_hh; r, z from xp + hp; n = tanh(xp_n + r hp_n).
// Cho et al.: r, z from xp + h W_rz^T; n = tanh(xp_n + (r h) W_n^T). h' = (1 - z) n + z h.
// Gate order (r, z, n).
// --------------------------------------------------------------------------------------------

// The GRU's row passes, functions with restrict parameters so that GCC vectorizes them (inside
// the kernels' lambdas, the loops over many arrays stayed scalar: 64% of the backward's own time).

// Reset after (torch.nn.GRU): from the step's projections xs = x_t W_ih^T and p = h W_hh^T (3H
// each, no bias), the gates R, Z, N, HN = p_n + b_hn (scratch), h' into y; saves (r, z, n) into g
// and HN into hn.
template <typename acc, typename scalar_t>
inline void gru_after_row(int64_t H, const scalar_t* __restrict__ xs, const acc* __restrict__ bx,
                          const scalar_t* __restrict__ p, const acc* __restrict__ bh, const scalar_t* __restrict__ h,
                          acc* __restrict__ R, acc* __restrict__ Z, acc* __restrict__ N, acc* __restrict__ HN,
                          scalar_t* __restrict__ y, scalar_t* __restrict__ g, scalar_t* __restrict__ hn) {
  for (int64_t k = 0; k < H; ++k) R[k] = sigm<acc>(acc(xs[k]) + bx[k] + acc(p[k]) + bh[k]);
  for (int64_t k = 0; k < H; ++k) Z[k] = sigm<acc>(acc(xs[H + k]) + bx[H + k] + acc(p[H + k]) + bh[H + k]);
  for (int64_t k = 0; k < H; ++k) HN[k] = acc(p[2 * H + k]) + bh[2 * H + k];
  for (int64_t k = 0; k < H; ++k) N[k] = tanh_<acc>(acc(xs[2 * H + k]) + bx[2 * H + k] + R[k] * HN[k]);
  for (int64_t k = 0; k < H; ++k) y[k] = (1 - Z[k]) * N[k] + Z[k] * acc(h[k]);
  for (int64_t k = 0; k < H; ++k) { g[k] = R[k]; g[H + k] = Z[k]; g[2 * H + k] = N[k]; hn[k] = HN[k]; }
}

// Cho, first pass: r, z from xs (3H) and p = h W_rz^T (2H); saves them into g, and r * h into rh
// (the next product's input) and aux.
template <typename acc, typename scalar_t>
inline void gru_cho_rz_row(int64_t H, const scalar_t* __restrict__ xs, const acc* __restrict__ bx,
                           const scalar_t* __restrict__ p, const scalar_t* __restrict__ h, acc* __restrict__ R,
                           acc* __restrict__ Z, scalar_t* __restrict__ g, scalar_t* __restrict__ rh,
                           scalar_t* __restrict__ aux) {
  for (int64_t k = 0; k < H; ++k) R[k] = sigm<acc>(acc(xs[k]) + bx[k] + acc(p[k]));
  for (int64_t k = 0; k < H; ++k) Z[k] = sigm<acc>(acc(xs[H + k]) + bx[H + k] + acc(p[H + k]));
  for (int64_t k = 0; k < H; ++k) {
    g[k] = R[k];
    g[H + k] = Z[k];
    const acc v = R[k] * acc(h[k]);
    rh[k] = v;
    aux[k] = v;
  }
}

// Cho, second pass: n = tanh(xs_n + b_n + pn) with pn = (r h) W_n^T, into n_out; h' into y.
template <typename acc, typename scalar_t>
inline void gru_cho_n_row(int64_t H, const scalar_t* __restrict__ xs_n, const acc* __restrict__ bx_n,
                          const scalar_t* __restrict__ pn, const scalar_t* __restrict__ h, acc* __restrict__ N,
                          const scalar_t* __restrict__ z, scalar_t* __restrict__ n_out, scalar_t* __restrict__ y) {
  for (int64_t k = 0; k < H; ++k) N[k] = tanh_<acc>(acc(xs_n[k]) + bx_n[k] + acc(pn[k]));
  for (int64_t k = 0; k < H; ++k) {
    const acc zk = z[k];
    n_out[k] = N[k];
    y[k] = (1 - zk) * N[k] + zk * acc(h[k]);
  }
}

// Reset after, backward: from dh and the saved (r, z, n) and hn, the pre-activations' gradient
// dx (3H), the recurrent projection's dp (3H: dr, dz, dn * r), dn * r again into dnr (for the
// weight gradient), and the direct part of the previous state's gradient dh * z into dd.
template <typename acc, typename scalar_t>
inline void gru_after_row_backward(int64_t H, const scalar_t* __restrict__ g, const scalar_t* __restrict__ hn,
                                   const scalar_t* __restrict__ h, const scalar_t* __restrict__ dh,
                                   scalar_t* __restrict__ dx, scalar_t* __restrict__ dp, scalar_t* __restrict__ dnr,
                                   scalar_t* __restrict__ dd) {
  for (int64_t k = 0; k < H; ++k) {
    const acc r = g[k], z = g[H + k], n = g[2 * H + k];
    const acc dhk = dh[k];
    const acc dn = dhk * (1 - z) * (1 - n * n);
    const acc dr = dn * acc(hn[k]) * r * (1 - r);
    const acc dz = dhk * (acc(h[k]) - n) * z * (1 - z);
    dx[k] = dr; dx[H + k] = dz; dx[2 * H + k] = dn;
    const acc dnr_k = dn * r;
    dp[k] = dr; dp[H + k] = dz; dp[2 * H + k] = dnr_k;
    dnr[k] = dnr_k;
    dd[k] = dhk * z;
  }
}

// Cho, backward, first pass: dn = dh (1 - z)(1 - n^2) into dn_out.
template <typename acc, typename scalar_t>
inline void gru_cho_dn_row(int64_t H, const scalar_t* __restrict__ g, const scalar_t* __restrict__ dh,
                           scalar_t* __restrict__ dn_out) {
  for (int64_t k = 0; k < H; ++k) {
    const acc z = g[H + k], n = g[2 * H + k];
    dn_out[k] = acc(dh[k]) * (1 - z) * (1 - n * n);
  }
}

// Cho, backward, second pass: with drh = dn W_n (the gradient of r h), dr and dz into dx[0, 2H)
// and the direct part of the previous state's gradient into dd.
template <typename acc, typename scalar_t>
inline void gru_cho_rz_row_backward(int64_t H, const scalar_t* __restrict__ g, const scalar_t* __restrict__ h,
                                    const scalar_t* __restrict__ drh, const scalar_t* __restrict__ dh,
                                    scalar_t* __restrict__ dx, scalar_t* __restrict__ dd) {
  for (int64_t k = 0; k < H; ++k) {
    const acc r = g[k], z = g[H + k], n = g[2 * H + k];
    const acc dhk = dh[k], hk = h[k];
    dx[k] = acc(drh[k]) * hk * r * (1 - r);
    dx[H + k] = dhk * (hk - n) * z * (1 - z);
    dd[k] = dhk * z + acc(drh[k]) * r;
  }
}

// out = a + b (n values).
template <typename acc, typename scalar_t>
inline void sum_rows(int64_t n, const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                     scalar_t* __restrict__ out) {
  for (int64_t k = 0; k < n; ++k) out[k] = acc(a[k]) + acc(b[k]);
}

std::vector<Tensor> gru_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_x,
                                const Tensor& b_hh, const Tensor& h0, const Tensor& lengths, bool reset_after,
                                bool save) {
  // Batch-first: x (B, T, I), projected here step by step (x_t W_ih^T, one product per step into
  // a (B, 3H) buffer), the input-side bias b_x (bias_ih, or Cho's bias) added pointwise; Y (B, T, H);
  // Gates (B, T, 3H) = r, z, n; Aux (B, T, H) = the recurrent n-term hp_n (reset_after) or r * h (Cho).
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1), H3 = 3 * H;
  auto Y = big_empty({B, T, H}, x.options(), save);
  const int64_t Ts = save ? T : 1;
  auto Gates = big_empty({B, Ts, H3}, x.options(), save);
  auto Aux = big_empty({B, Ts, H}, x.options(), save);
  auto XS = at::empty({B, H3}, x.options());          // x_t W_ih^T
  auto HP = at::empty({B, H3}, x.options());          // h W^T: all gates (reset_after) or r, z (Cho)
  auto HPn = at::empty({B, H}, x.options());
  auto RH = at::empty({B, H}, x.options());
  const Rows rows = rows_of(lengths);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "gru_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto in_bias = as_acc<acc, scalar_t>(b_x, H3);
    const auto rec_bias = as_acc<acc, scalar_t>(b_hh, H3);
    const acc* bx = in_bias.data();
    const acc* bh = rec_bias.data();
    const scalar_t* X = x.data_ptr<scalar_t>();
    scalar_t* YP = Y.data_ptr<scalar_t>();
    scalar_t* GP = Gates.data_ptr<scalar_t>();
    scalar_t* AP = Aux.data_ptr<scalar_t>();
    scalar_t* xs_all = XS.data_ptr<scalar_t>();
    scalar_t* hpb_all = HP.data_ptr<scalar_t>();
    scalar_t* pn_all = HPn.data_ptr<scalar_t>();
    scalar_t* rh_all = RH.data_ptr<scalar_t>();
    const scalar_t* w = W.data_ptr<scalar_t>();
    for_batch_blocks(B, T * H3 * H, [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wx(true, M, H3, I, WI.data_ptr<scalar_t>(), I);
      const PackedWeight<scalar_t> Wall(true, M, reset_after ? H3 : 2 * H, H, w, H);
      const PackedWeight<scalar_t> Wn(true, M, H, H, w + 2 * H * H, H);
      std::vector<acc> scratch(4 * H);
      for (int64_t t = 0; t < T; ++t) {
        // row b of a (B, T, W) sequence at step t is at base + t * W + b * T * W; of a state (B, W), b * W
        const int64_t hs = t ? T * H : H;
        const scalar_t* hp = t ? YP + (t - 1) * H : h0.data_ptr<scalar_t>();
        const int64_t ts = save ? t : 0;
        scalar_t* y = YP + t * H;
        scalar_t* gs = GP + ts * H3;
        scalar_t* aux = AP + ts * H;
        const int64_t ldp = reset_after ? H3 : 2 * H;
        Wx.product(X + t * I + b0 * T * I, T * I, 0.0, xs_all + b0 * H3, H3);
        Wall.product(hp + b0 * hs, hs, 0.0, hpb_all + b0 * ldp, ldp);
        if (reset_after) {
          for (int64_t b = b0; b < b1; ++b) {
            const scalar_t* __restrict__ hb = hp + b * hs;
            scalar_t* __restrict__ yb = y + b * T * H;
            if (!rows.valid(b, t)) { for (int64_t k = 0; k < H; ++k) yb[k] = hb[k]; continue; }
            acc* sc = scratch.data();
            gru_after_row<acc>(H, xs_all + b * H3, bx, hpb_all + b * H3, bh, hb, sc, sc + H, sc + 2 * H, sc + 3 * H,
                               yb, gs + b * Ts * H3, aux + b * Ts * H);
          }
        } else {
          for (int64_t b = b0; b < b1; ++b) {
            acc* sc = scratch.data();
            gru_cho_rz_row<acc>(H, xs_all + b * H3, bx, hpb_all + b * 2 * H, hp + b * hs, sc, sc + H,
                                gs + b * Ts * H3, rh_all + b * H, aux + b * Ts * H);
          }
          Wn.product(rh_all + b0 * H, H, 0.0, pn_all + b0 * H, H);
          for (int64_t b = b0; b < b1; ++b) {
            const scalar_t* __restrict__ hb = hp + b * hs;
            scalar_t* __restrict__ yb = y + b * T * H;
            if (!rows.valid(b, t)) { for (int64_t k = 0; k < H; ++k) yb[k] = hb[k]; continue; }
            scalar_t* gb = gs + b * Ts * H3;
            gru_cho_n_row<acc>(H, xs_all + b * H3 + 2 * H, bx + 2 * H, pn_all + b * H, hb, scratch.data(), gb + H,
                               gb + 2 * H, yb);
          }
        }
      }
    });
  });
  return {Y, Gates, Aux};
}

std::vector<Tensor> gru_backward(const Tensor& dY, const Tensor& dhT, const Tensor& x, const Tensor& w_ih,
                                 const Tensor& w_hh, const Tensor& b_x, const Tensor& b_hh, const Tensor& h0,
                                 const Tensor& Y, const Tensor& Gates, const Tensor& Aux, const Tensor& lengths,
                                 bool reset_after, bool need_dx) {
  // Batch-first like gru_forward; each step's input gradient dx_t = dxp_t W_ih is one more product
  // in the step (need_dx: else none). Returns dx (B, T, I), dw_ih, dw_hh, db_x, db_hh, dh0.
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), H3 = 3 * H, I = x.size(2);
  auto dXp = big_empty({B, T, H3}, Y.options());
  auto dX = need_dx ? big_empty({B, T, I}, Y.options()) : Tensor();
  const auto WI = w_ih.contiguous();
  // reset after: the recurrent projection's gradient is dXp's but for the n columns, dn * r; only
  // those are kept for the weight gradient, the step's full row goes through a scratch row
  auto dNR = reset_after ? big_empty({B, T, H}, Y.options()) : Tensor();
  auto dP = reset_after ? at::empty({B, H3}, Y.options()) : Tensor();
  auto dh = zeros_like_or(dhT, h0).clone();
  auto dh_direct = at::empty({B, H}, Y.options());
  auto tmp_h = at::empty({B, H}, Y.options());
  auto dRH = at::empty({B, H}, Y.options());
  const Rows rows = rows_of(lengths);
  const bool has_dY = has(dY);
  const auto W = w_hh.contiguous();
  // the bias gradients are column sums of the gate gradients, taken in the pass that writes them:
  // (dr, dz, dn, dn * r) per block of rows, added in block order after the loop
  const bool bias_sums = has(b_x) || has(b_hh);
  BlockSums<double> sums(B, bias_sums ? 4 * H : 0);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "gru_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const scalar_t* YP = Y.data_ptr<scalar_t>();
    const scalar_t* GP = Gates.data_ptr<scalar_t>();
    const scalar_t* AP = Aux.data_ptr<scalar_t>();
    const scalar_t* DY = has_dY ? dY.data_ptr<scalar_t>() : nullptr;
    scalar_t* DX = dXp.data_ptr<scalar_t>();
    scalar_t* DNR = reset_after ? dNR.data_ptr<scalar_t>() : nullptr;
    scalar_t* dp = reset_after ? dP.data_ptr<scalar_t>() : nullptr;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dd = dh_direct.data_ptr<scalar_t>();
    scalar_t* th = tmp_h.data_ptr<scalar_t>();
    scalar_t* drh_all = dRH.data_ptr<scalar_t>();
    const scalar_t* w = W.data_ptr<scalar_t>();
    for_batch_blocks(B, T * H3 * H, [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wall(false, M, H, reset_after ? H3 : 2 * H, w, H);   // dh += d @ W(r,z[,n])
      const PackedWeight<scalar_t> Wn(false, M, H, H, w + 2 * H * H, H);                // d(r h) = dn @ W_n
      const PackedWeight<scalar_t> Wx(false, M, I, H3, need_dx ? WI.data_ptr<scalar_t>() : nullptr, I);
      scalar_t* DXI = need_dx ? dX.data_ptr<scalar_t>() : nullptr;
      std::vector<acc> sum(bias_sums ? 4 * H : 0, acc(0));
      acc* __restrict__ s = sum.data();
      for (int64_t t = T - 1; t >= 0; --t) {
        // row b at step t: of a (B, T, W) sequence base + t * W + b * T * W; of the state before step t, hp + b * hs
        const int64_t hs = t ? T * H : H;
        const scalar_t* hp = t ? YP + (t - 1) * H : h0.data_ptr<scalar_t>();
        const scalar_t* gs = GP + t * H3;
        const scalar_t* aux = AP + t * H;
        const scalar_t* dy = DY ? DY + t * H : nullptr;
        scalar_t* dx = DX + t * H3;
        if (reset_after) {
          scalar_t* dnr = DNR + t * H;
          for (int64_t b = b0; b < b1; ++b) {
            scalar_t* __restrict__ dhb = dhp + b * H;
            scalar_t* __restrict__ ddb = dd + b * H;
            scalar_t* __restrict__ dxb = dx + b * T * H3;
            scalar_t* __restrict__ dpb = dp + b * H3;
            scalar_t* __restrict__ dnrb = dnr + b * T * H;
            if (dy) add_row<acc>(H, dy + b * T * H, dhb);
            if (!rows.valid(b, t)) {
              for (int64_t k = 0; k < H3; ++k) { dxb[k] = 0; dpb[k] = 0; }
              for (int64_t k = 0; k < H; ++k) dnrb[k] = 0;
              for (int64_t k = 0; k < H; ++k) ddb[k] = dhb[k];
              continue;
            }
            gru_after_row_backward<acc>(H, gs + b * T * H3, aux + b * T * H, hp + b * hs, dhb, dxb, dpb, dnrb, ddb);
            if (bias_sums) {
              add_row<acc>(H3, dxb, s);
              add_row<acc>(H, dnrb, s + H3);
            }
          }
          Wall.product(dp + b0 * H3, H3, 0.0, th + b0 * H, H);
        } else {
          for (int64_t b = b0; b < b1; ++b) {
            scalar_t* __restrict__ dhb = dhp + b * H;
            if (dy) add_row<acc>(H, dy + b * T * H, dhb);
            scalar_t* __restrict__ dxb = dx + b * T * H3;
            if (!rows.valid(b, t)) { for (int64_t k = 0; k < H3; ++k) dxb[k] = 0; continue; }
            gru_cho_dn_row<acc>(H, gs + b * T * H3, dhb, dxb + 2 * H);
          }
          Wn.product(dx + b0 * T * H3 + 2 * H, T * H3, 0.0, drh_all + b0 * H, H);
          for (int64_t b = b0; b < b1; ++b) {
            scalar_t* __restrict__ dhb = dhp + b * H;
            scalar_t* __restrict__ ddb = dd + b * H;
            if (!rows.valid(b, t)) { for (int64_t k = 0; k < H; ++k) ddb[k] = dhb[k]; continue; }
            scalar_t* dxb = dx + b * T * H3;
            gru_cho_rz_row_backward<acc>(H, gs + b * T * H3, hp + b * hs, drh_all + b * H, dhb, dxb, ddb);
            if (bias_sums) add_row<acc>(H3, dxb, s);
          }
          Wall.product(dx + b0 * T * H3, T * H3, 0.0, th + b0 * H, H);
        }
        if (DXI) Wx.product(dx + b0 * T * H3, T * H3, 0.0, DXI + t * I + b0 * T * I, T * I);
        for (int64_t b = b0; b < b1; ++b) {
          if (rows.valid(b, t)) sum_rows<acc>(H, dd + b * H, th + b * H, dhp + b * H);
          else std::memcpy(dhp + b * H, dd + b * H, H * sizeof(scalar_t));
        }
      }
      sums.put(b0, sum);
    });
  });
  Tensor dw_hh, db_x, db_hh;
  auto dw_ih = weight_grad(dXp.view({B * T, H3}), x.reshape({B * T, I}));
  if (reset_after) {
    dw_hh = at::cat({grad_through_states(dXp.narrow(2, 0, 2 * H), h0, Y), grad_through_states(dNR, h0, Y)});
  } else {
    dw_hh = at::cat({grad_through_states(dXp.narrow(2, 0, 2 * H), h0, Y),
                     weight_grad(dXp.view({B * T, H3}).narrow(1, 2 * H, H), Aux.view({B * T, H}))});
  }
  if (bias_sums) {
    const auto total = sums.total(Y.options());          // (dr, dz, dn, dn * r), 4H
    if (has(b_x)) db_x = total.narrow(0, 0, H3).clone();
    if (has(b_hh)) db_hh = at::cat({total.narrow(0, 0, 2 * H), total.narrow(0, H3, H)});
  }
  return {dX, dw_ih, dw_hh, db_x, db_hh, dh};
}

// --------------------------------------------------------------------------------------------
// Elman: h = act(x W_ih^T + h W_hh^T + b), act 0 tanh, 1 relu, 2 logistic.
// --------------------------------------------------------------------------------------------

// y = act(z + b) over one row (act 0 tanh, 1 relu, 2 logistic), and its backward dz = dh act'(.)
// from the value y: functions with restrict parameters, so that GCC vectorizes them.
template <typename acc, typename scalar_t>
inline void elman_row(int64_t H, int64_t act, const scalar_t* __restrict__ z, const acc* __restrict__ b,
                      scalar_t* __restrict__ y) {
  if (act == 0) { for (int64_t k = 0; k < H; ++k) y[k] = tanh_<acc>(acc(z[k]) + b[k]); }
  else if (act == 1) { for (int64_t k = 0; k < H; ++k) { const acc u = acc(z[k]) + b[k]; y[k] = u > 0 ? u : acc(0); } }
  else { for (int64_t k = 0; k < H; ++k) y[k] = sigm<acc>(acc(z[k]) + b[k]); }
}

template <typename acc, typename scalar_t>
inline void elman_row_backward(int64_t H, int64_t act, const scalar_t* __restrict__ dh, const scalar_t* __restrict__ y,
                               scalar_t* __restrict__ dz) {
  if (act == 0) { for (int64_t k = 0; k < H; ++k) dz[k] = acc(dh[k]) * (1 - acc(y[k]) * acc(y[k])); }
  else if (act == 1) { for (int64_t k = 0; k < H; ++k) dz[k] = acc(y[k]) > 0 ? acc(dh[k]) : acc(0); }
  else { for (int64_t k = 0; k < H; ++k) dz[k] = acc(dh[k]) * acc(y[k]) * (1 - acc(y[k])); }
}

// Batch-first, projecting the input itself: per step x_t W_ih^T and h W_hh^T into one small
// buffer; the bias (H, or absent) added pointwise. x (B, T, I); Y (B, T, H).
std::vector<Tensor> elman_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                  const Tensor& h0, const Tensor& lengths, int64_t act, bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1);
  auto Y = big_empty({B, T, H}, x.options(), save);
  auto Z = at::empty({B, H}, x.options());
  const Rows rows = rows_of(lengths);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "elman_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const scalar_t* X = x.data_ptr<scalar_t>();
    scalar_t* YP = Y.data_ptr<scalar_t>();
    scalar_t* z_all = Z.data_ptr<scalar_t>();
    const auto bias_acc = as_acc<acc, scalar_t>(bias, H);
    for_batch_blocks(B, T * H * (H + I), [&](int64_t b0, int64_t b1) {
      const PackedWeight<scalar_t> Wx(true, b1 - b0, H, I, WI.data_ptr<scalar_t>(), I);
      const PackedWeight<scalar_t> Wp(true, b1 - b0, H, H, W.data_ptr<scalar_t>(), H);
      for (int64_t t = 0; t < T; ++t) {
        // row b of a (B, T, W) sequence at step t is at base + t * W + b * T * W; of a state (B, W), b * W
        const int64_t hs = t ? T * H : H;
        const scalar_t* hp = t ? YP + (t - 1) * H : h0.data_ptr<scalar_t>();
        scalar_t* y = YP + t * H;
        Wx.product(X + t * I + b0 * T * I, T * I, 0.0, z_all + b0 * H, H);
        Wp.product(hp + b0 * hs, hs, 1.0, z_all + b0 * H, H);
        for (int64_t b = b0; b < b1; ++b) {
          if (!rows.valid(b, t)) { std::memcpy(y + b * T * H, hp + b * hs, H * sizeof(scalar_t)); continue; }
          elman_row<acc>(H, act, z_all + b * H, bias_acc.data(), y + b * T * H);
        }
      }
    });
  });
  return {Y};
}

// Batch-first like elman_forward; dY (B, T, H) or empty. dx_t = dz_t W_ih is one more product per
// step (need_dx: else none). Returns dx, dw_ih, dw_hh, dbias, dh0.
std::vector<Tensor> elman_backward(const Tensor& dY, const Tensor& dhT, const Tensor& x, const Tensor& w_ih,
                                   const Tensor& w_hh, const Tensor& bias, const Tensor& h0, const Tensor& Y,
                                   const Tensor& lengths, int64_t act, bool need_dx) {
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), I = x.size(2);
  auto dZ = big_empty({B, T, H}, Y.options());
  auto dX = need_dx ? big_empty({B, T, I}, Y.options()) : Tensor();
  auto dh = zeros_like_or(dhT, h0).clone();
  auto tmp_h = at::empty({B, H}, Y.options());
  const Rows rows = rows_of(lengths);
  const bool has_dY = has(dY);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  BlockSums<double> sums(B, has(bias) ? H : 0);    // the bias gradient: column sums of dZ
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "elman_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const scalar_t* YP = Y.data_ptr<scalar_t>();
    const scalar_t* DY = has_dY ? dY.data_ptr<scalar_t>() : nullptr;
    scalar_t* DZ_ = dZ.data_ptr<scalar_t>();
    scalar_t* DX = need_dx ? dX.data_ptr<scalar_t>() : nullptr;
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* th = tmp_h.data_ptr<scalar_t>();
    for_batch_blocks(B, T * H * (H + I), [&](int64_t b0, int64_t b1) {
      const PackedWeight<scalar_t> Wp(false, b1 - b0, H, H, W.data_ptr<scalar_t>(), H);
      const PackedWeight<scalar_t> Wx(false, b1 - b0, I, H, need_dx ? WI.data_ptr<scalar_t>() : nullptr, I);
      std::vector<acc> sum(sums.n, acc(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        scalar_t* dz = DZ_ + t * H;
        for (int64_t b = b0; b < b1; ++b) {
          scalar_t* dhb = dhp + b * H;
          scalar_t* dzb = dz + b * T * H;
          if (DY) add_row<acc>(H, DY + t * H + b * T * H, dhb);
          if (!rows.valid(b, t)) { std::fill_n(dzb, H, scalar_t(0)); continue; }
          elman_row_backward<acc>(H, act, dhb, YP + t * H + b * T * H, dzb);
          if (sums.n) add_row<acc>(H, dzb, sum.data());
        }
        Wp.product(dz + b0 * T * H, T * H, 0.0, th + b0 * H, H);
        if (DX) Wx.product(dz + b0 * T * H, T * H, 0.0, DX + t * I + b0 * T * I, T * I);
        take_valid_rows(rows, t, b0, b1, dhp, th, H);
      }
      sums.put(b0, sum);
    });
  });
  auto dw_hh = grad_through_states(dZ, h0, Y);
  auto dw_ih = weight_grad(dZ.view({B * T, H}), x.reshape({B * T, I}));
  Tensor dbias = has(bias) ? sums.total(Y.options()) : Tensor();
  return {dX, dw_ih, dw_hh, dbias, dh};
}

// --------------------------------------------------------------------------------------------
// LSTM 1997: N blocks of S cells; rows i (N), f (N, optional), g (H), o (N, optional).
//   cfg = {S, has_f, has_o, g_kind (0 scaled, 1 logistic, 2 tanh, 3 identity),
//          h_kind (0 scaled, 1 tanh, 2 identity), recurrent (0 all, 1 cells, 2 none), truncate}
// State: u = [y_c (H), gate activations (n_gates * N) when recurrent == all], and s (H).
// With truncate, no gradient flows through u into the previous step (only through s).
// --------------------------------------------------------------------------------------------

template <typename acc>
inline acc g_act(int64_t kind, acc x) {
  switch (kind) {
    case 0: return 4 * sigm<acc>(x) - 2;
    case 1: return sigm<acc>(x);
    case 2: return tanh_<acc>(x);
    default: return x;
  }
}

template <typename acc>
inline acc g_deriv_from_value(int64_t kind, acc v) {
  switch (kind) {
    case 0: { const acc s = (v + 2) / 4; return 4 * s * (1 - s); }
    case 1: return v * (1 - v);
    case 2: return 1 - v * v;
    default: return 1;
  }
}

template <typename acc>
inline acc h_act(int64_t kind, acc x) {
  return kind == 0 ? 2 * sigm<acc>(x) - 1 : kind == 1 ? tanh_<acc>(x) : x;
}

template <typename acc>
inline acc h_deriv(int64_t kind, acc x) {
  if (kind == 0) { const acc s = sigm<acc>(x); return 2 * s * (1 - s); }
  if (kind == 1) { const acc t = tanh_<acc>(x); return 1 - t * t; }
  return 1;
}

// out[k] = g(z[k]) and out[k] = h(x[k]) for k < n, the kind chosen once (loops that vectorize).
template <typename acc, typename scalar_t>
inline void g_acts(int64_t kind, const scalar_t* __restrict__ z, acc* __restrict__ out, int64_t n) {
  switch (kind) {
    case 0: for (int64_t k = 0; k < n; ++k) out[k] = 4 * sigm<acc>(acc(z[k])) - 2; break;
    case 1: for (int64_t k = 0; k < n; ++k) out[k] = sigm<acc>(acc(z[k])); break;
    case 2: for (int64_t k = 0; k < n; ++k) out[k] = tanh_<acc>(acc(z[k])); break;
    default: for (int64_t k = 0; k < n; ++k) out[k] = acc(z[k]);
  }
}

template <typename acc>
inline void h_acts(int64_t kind, const acc* __restrict__ x, acc* __restrict__ out, int64_t n) {
  if (kind == 0) { for (int64_t k = 0; k < n; ++k) out[k] = 2 * sigm<acc>(x[k]) - 1; }
  else if (kind == 1) { for (int64_t k = 0; k < n; ++k) out[k] = tanh_<acc>(x[k]); }
  else { for (int64_t k = 0; k < n; ++k) out[k] = x[k]; }
}

struct Cfg1997 {
  int64_t S, N, H, R, U, NG, oi, of = -1, og, oo = -1, kind_g, kind_h, recurrent;
  bool has_f, has_o, truncate;
  Cfg1997(const std::vector<int64_t>& c, int64_t H_) : H(H_) {
    S = c[0]; has_f = c[1]; has_o = c[2]; kind_g = c[3]; kind_h = c[4]; recurrent = c[5]; truncate = c[6];
    N = H / S;
    int64_t off = 0;
    oi = off; off += N;
    if (has_f) { of = off; off += N; }
    og = off; off += H;
    if (has_o) { oo = off; off += N; }
    R = off;
    NG = R - H;                         // gate rows
    U = recurrent == 0 ? H + NG : H;    // recurrent state width (y_c first)
  }
};

// Batch-first, and it projects the input itself: per step x_t W_ih^T and u W_hh^T into one small
// buffer, plus the bias (R values, or absent). x (B, T, I); Us (B, T, U), Ss (B, T, H), Gates (B, T, R).
std::vector<Tensor> lstm1997_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                     const Tensor& u0, const Tensor& s0, const Tensor& lengths,
                                     std::vector<int64_t> cfg_, bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = s0.size(1);
  const Cfg1997 cfg(cfg_, H);
  const int64_t R = cfg.R, U = cfg.U, S = cfg.S;
  const int64_t Ts = save ? T : 1;
  auto Us = big_empty({B, T, U}, x.options(), save);
  auto Ss = big_empty({B, T, H}, x.options(), save);
  auto Gates = big_empty({B, Ts, R}, x.options(), save);
  auto Z = at::empty({B, R}, x.options());
  const Rows rows = rows_of(lengths);
  const bool gemm = cfg.recurrent != 2;
  const auto W = gemm ? w_hh.contiguous() : Tensor();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "lstm1997_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const scalar_t* X = x.data_ptr<scalar_t>();
    scalar_t* UP = Us.data_ptr<scalar_t>();
    scalar_t* SP = Ss.data_ptr<scalar_t>();
    scalar_t* GP = Gates.data_ptr<scalar_t>();
    scalar_t* z_all = Z.data_ptr<scalar_t>();
    const bool has_bias = has(bias);
    const auto bias_acc = as_acc<acc, scalar_t>(bias, R);
    const acc* bs = bias_acc.data();
    for_batch_blocks(B, T * R * (U + I), [&](int64_t b0, int64_t b1) {
    const PackedWeight<scalar_t> Wx(true, b1 - b0, R, I, WI.data_ptr<scalar_t>(), I);
    const PackedWeight<scalar_t> Wp(true, b1 - b0, R, U, gemm ? W.data_ptr<scalar_t>() : nullptr, U);
    const int64_t N = cfg.N;
    std::vector<acc> scratch(3 * N + 3 * H);
    for (int64_t t = 0; t < T; ++t) {
      // row b of a (B, T, W) sequence at step t is at base + t * W + b * T * W; of a state (B, W), b * W
      const int64_t us = t ? T * U : U, ss = t ? T * H : H;
      const scalar_t* up = t ? UP + (t - 1) * U : u0.data_ptr<scalar_t>();
      const scalar_t* sp = t ? SP + (t - 1) * H : s0.data_ptr<scalar_t>();
      scalar_t* u = UP + t * U;
      scalar_t* s = SP + t * H;
      scalar_t* gs = GP + (save ? t : 0) * R;
      Wx.product(X + t * I + b0 * T * I, T * I, 0.0, z_all + b0 * R, R);
      if (gemm) Wp.product(up + b0 * us, us, 1.0, z_all + b0 * R, R);
      for (int64_t b = b0; b < b1; ++b) {
        if (!rows.valid(b, t)) {
          for (int64_t k = 0; k < U; ++k) u[b * T * U + k] = up[b * us + k];
          for (int64_t k = 0; k < H; ++k) s[b * T * H + k] = sp[b * ss + k];
          continue;
        }
        scalar_t* __restrict__ zb = z_all + b * R;
        if (has_bias) add_row<acc>(R, bs, zb);
        scalar_t* __restrict__ gb = gs + b * Ts * R;
        scalar_t* __restrict__ ub = u + b * T * U;
        scalar_t* __restrict__ sb = s + b * T * H;
        const scalar_t* __restrict__ spb = sp + b * ss;
        // one loop per quantity (each vectorizes), the activation kind chosen outside the loops
        acc* __restrict__ GI = scratch.data();
        acc* __restrict__ GF = GI + N;
        acc* __restrict__ GO = GF + N;
        acc* __restrict__ G = GO + N;
        acc* __restrict__ SN = G + H;
        acc* __restrict__ HS = SN + H;
        for (int64_t j = 0; j < N; ++j) GI[j] = sigm<acc>(zb[cfg.oi + j]);
        if (cfg.has_f) { for (int64_t j = 0; j < N; ++j) GF[j] = sigm<acc>(zb[cfg.of + j]); }
        else { for (int64_t j = 0; j < N; ++j) GF[j] = 1; }
        if (cfg.has_o) { for (int64_t j = 0; j < N; ++j) GO[j] = sigm<acc>(zb[cfg.oo + j]); }
        else { for (int64_t j = 0; j < N; ++j) GO[j] = 1; }
        g_acts<acc>(cfg.kind_g, zb + cfg.og, G, H);
        if (S == 1) {
          for (int64_t k = 0; k < H; ++k) SN[k] = GF[k] * acc(spb[k]) + GI[k] * G[k];
        } else {
          for (int64_t j = 0; j < N; ++j)
            for (int64_t v = 0; v < S; ++v) SN[j * S + v] = GF[j] * acc(spb[j * S + v]) + GI[j] * G[j * S + v];
        }
        h_acts<acc>(cfg.kind_h, SN, HS, H);
        if (S == 1) {
          for (int64_t k = 0; k < H; ++k) ub[k] = GO[k] * HS[k];
        } else {
          for (int64_t j = 0; j < N; ++j)
            for (int64_t v = 0; v < S; ++v) ub[j * S + v] = GO[j] * HS[j * S + v];
        }
        for (int64_t k = 0; k < H; ++k) { sb[k] = SN[k]; gb[cfg.og + k] = G[k]; }
        for (int64_t j = 0; j < N; ++j) gb[cfg.oi + j] = GI[j];
        if (cfg.has_f) for (int64_t j = 0; j < N; ++j) gb[cfg.of + j] = GF[j];
        if (cfg.has_o) for (int64_t j = 0; j < N; ++j) gb[cfg.oo + j] = GO[j];
        if (cfg.recurrent == 0) {       // gate activations in the state, in the row order (i, f, o)
          int64_t off = H;
          for (int64_t j = 0; j < N; ++j) ub[off + j] = GI[j];
          off += N;
          if (cfg.has_f) { for (int64_t j = 0; j < N; ++j) ub[off + j] = GF[j]; off += N; }
          if (cfg.has_o) for (int64_t j = 0; j < N; ++j) ub[off + j] = GO[j];
        }
      }
    }
    });
  });
  return {Us, Ss, Gates};
}

// A 1997 gate's backward over the N blocks of a row where every block has one cell (S = 1):
// out = (extra + a * b) * y (1 - y), where a * b is the gradient from the block's cell and extra
// what reaches the gate's activation y through the recurrence (nullptr: nothing).
template <typename acc, typename scalar_t, typename A, typename Bv>
inline void gate1997_backward(int64_t N, const scalar_t* __restrict__ extra, const A* __restrict__ a,
                              const Bv* __restrict__ b, const acc* __restrict__ y, scalar_t* __restrict__ out) {
  if (extra) {
    for (int64_t j = 0; j < N; ++j) out[j] = (acc(extra[j]) + acc(a[j]) * acc(b[j])) * y[j] * (1 - y[j]);
  } else {
    for (int64_t j = 0; j < N; ++j) out[j] = (acc(a[j]) * acc(b[j])) * y[j] * (1 - y[j]);
  }
}

// Batch-first like lstm1997_forward; dY (B, T, U) or empty. Each step's input gradient dx_t = dz_t
// W_ih is one more product (need_dx: else none). Returns dx, dw_ih, dw_hh, dbias, du0, ds0.
std::vector<Tensor> lstm1997_backward(const Tensor& dY, const Tensor& duT, const Tensor& dsT, const Tensor& x,
                                      const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias, const Tensor& u0,
                                      const Tensor& s0, const Tensor& Us, const Tensor& Ss, const Tensor& Gates,
                                      const Tensor& lengths, std::vector<int64_t> cfg_, bool need_dx) {
  const int64_t B = Us.size(0), T = Us.size(1), H = Ss.size(2), I = x.size(2);
  const Cfg1997 cfg(cfg_, H);
  const int64_t R = cfg.R, U = cfg.U, S = cfg.S;
  auto dZ = big_empty({B, T, R}, Us.options());
  auto dX = need_dx ? big_empty({B, T, I}, Us.options()) : Tensor();
  const auto WI = w_ih.contiguous();
  BlockSums<double> sums(B, has(bias) ? R : 0);    // the bias gradient: column sums of dZ
  auto du = zeros_like_or(duT, u0).clone();
  auto ds = zeros_like_or(dsT, s0).clone();
  auto tmp_u = at::empty({B, U}, Us.options());
  const Rows rows = rows_of(lengths);
  const bool has_dY = has(dY);
  const bool gemm = cfg.recurrent != 2;
  const bool flows = gemm && !cfg.truncate;   // does the gradient flow through u to the previous step?
  const auto W = gemm ? w_hh.contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Us.scalar_type(), "lstm1997_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const scalar_t* SP = Ss.data_ptr<scalar_t>();
    const scalar_t* GP = Gates.data_ptr<scalar_t>();
    const scalar_t* DY = has_dY ? dY.data_ptr<scalar_t>() : nullptr;
    scalar_t* DZ_ = dZ.data_ptr<scalar_t>();
    scalar_t* dup = du.data_ptr<scalar_t>();
    scalar_t* dsp = ds.data_ptr<scalar_t>();
    scalar_t* tu = tmp_u.data_ptr<scalar_t>();
    scalar_t* DX = need_dx ? dX.data_ptr<scalar_t>() : nullptr;
    for_batch_blocks(B, T * R * (U + I), [&](int64_t b0, int64_t b1) {
    const PackedWeight<scalar_t> Wp(false, b1 - b0, U, R, flows ? W.data_ptr<scalar_t>() : nullptr, U);
    const PackedWeight<scalar_t> Wx(false, b1 - b0, I, R, need_dx ? WI.data_ptr<scalar_t>() : nullptr, I);
    const int64_t N = cfg.N;
    std::vector<acc> scratch(8 * H);
    std::vector<acc> sum(sums.n, acc(0));
    for (int64_t t = T - 1; t >= 0; --t) {
      // row b at step t: of a (B, T, W) sequence base + t * W + b * T * W; of the state before step t, sp + b * ss
      const int64_t ss = t ? T * H : H;
      const scalar_t* sp = t ? SP + (t - 1) * H : s0.data_ptr<scalar_t>();
      const scalar_t* sc = SP + t * H;
      const scalar_t* gs = GP + t * R;
      const scalar_t* dy = DY ? DY + t * U : nullptr;
      scalar_t* dz = DZ_ + t * R;
      for (int64_t b = b0; b < b1; ++b) {
        if (dy) add_row<acc>(U, dy + b * T * U, dup + b * U);
        scalar_t* dzb = dz + b * T * R;
        if (!rows.valid(b, t)) { for (int64_t k = 0; k < R; ++k) dzb[k] = 0; continue; }
        const scalar_t* __restrict__ gb = gs + b * T * R;
        const scalar_t* __restrict__ dub = dup + b * U;
        const scalar_t* __restrict__ scb = sc + b * T * H;
        const scalar_t* __restrict__ spb = sp + b * ss;
        scalar_t* __restrict__ dspb = dsp + b * H;
        // per cell: its block's gates (CI, CF, CO), h(s) and h'(s) from the value, g'(from g)
        acc* __restrict__ CI = scratch.data();
        acc* __restrict__ CF = CI + H;
        acc* __restrict__ CO = CF + H;
        acc* __restrict__ HV = CO + H;
        acc* __restrict__ HD = HV + H;
        acc* __restrict__ DS = HD + H;
        acc* __restrict__ GV = DS + H;
        acc* __restrict__ GD = GV + H;
        for (int64_t j = 0; j < N; ++j)
          for (int64_t v = 0; v < S; ++v) {
            CI[j * S + v] = gb[cfg.oi + j];
            CF[j * S + v] = cfg.has_f ? acc(gb[cfg.of + j]) : acc(1);
            CO[j * S + v] = cfg.has_o ? acc(gb[cfg.oo + j]) : acc(1);
          }
        for (int64_t k = 0; k < H; ++k) DS[k] = scb[k];            // s_t, for h below
        h_acts<acc>(cfg.kind_h, DS, HV, H);
        if (cfg.kind_h == 0) {
          for (int64_t k = 0; k < H; ++k) { const acc q = (HV[k] + 1) / 2; HD[k] = 2 * q * (1 - q); }
        } else if (cfg.kind_h == 1) {
          for (int64_t k = 0; k < H; ++k) HD[k] = 1 - HV[k] * HV[k];
        } else {
          for (int64_t k = 0; k < H; ++k) HD[k] = 1;
        }
        for (int64_t k = 0; k < H; ++k) GV[k] = gb[cfg.og + k];
        switch (cfg.kind_g) {
          case 0: for (int64_t k = 0; k < H; ++k) { const acc q = (GV[k] + 2) / 4; GD[k] = 4 * q * (1 - q); } break;
          case 1: for (int64_t k = 0; k < H; ++k) GD[k] = GV[k] * (1 - GV[k]); break;
          case 2: for (int64_t k = 0; k < H; ++k) GD[k] = 1 - GV[k] * GV[k]; break;
          default: for (int64_t k = 0; k < H; ++k) GD[k] = 1;
        }
        for (int64_t k = 0; k < H; ++k) DS[k] = acc(dspb[k]) + acc(dub[k]) * CO[k] * HD[k];
        for (int64_t k = 0; k < H; ++k) dzb[cfg.og + k] = DS[k] * CI[k] * GD[k];
        // the gates' gradients: sums over each block's cells, plus (recurrent == all) what reaches
        // the gate's activation through the recurrence
        const scalar_t* d_in = cfg.recurrent == 0 ? dub + H : nullptr;
        const scalar_t* d_phi = cfg.recurrent == 0 && cfg.has_f ? dub + H + N : nullptr;
        const scalar_t* d_out = cfg.recurrent == 0 && cfg.has_o ? dub + H + N * (cfg.has_f ? 2 : 1) : nullptr;
        if (S == 1) {                          // one cell per block (the default): loops that vectorize
          gate1997_backward<acc>(N, d_in, DS, GV, CI, dzb + cfg.oi);
          if (cfg.has_f) gate1997_backward<acc>(N, d_phi, DS, spb, CF, dzb + cfg.of);
          if (cfg.has_o) gate1997_backward<acc>(N, d_out, dub, HV, CO, dzb + cfg.oo);
        } else {
          for (int64_t j = 0; j < N; ++j) {
            acc din = d_in ? acc(d_in[j]) : acc(0), dphi = d_phi ? acc(d_phi[j]) : acc(0),
                dout = d_out ? acc(d_out[j]) : acc(0);
            for (int64_t v = 0; v < S; ++v) {
              const int64_t k = j * S + v;
              dout += acc(dub[k]) * HV[k];
              din += DS[k] * GV[k];
              dphi += DS[k] * acc(spb[k]);
            }
            const acc yin = CI[j * S], yphi = CF[j * S], yout = CO[j * S];
            dzb[cfg.oi + j] = din * yin * (1 - yin);
            if (cfg.has_f) dzb[cfg.of + j] = dphi * yphi * (1 - yphi);
            if (cfg.has_o) dzb[cfg.oo + j] = dout * yout * (1 - yout);
          }
        }
        for (int64_t k = 0; k < H; ++k) dspb[k] = DS[k] * CF[k];
        if (sums.n) add_row<acc>(R, dzb, sum.data());
      }
      if (flows) Wp.product(dz + b0 * T * R, T * R, 0.0, tu + b0 * U, U);
      if (DX) Wx.product(dz + b0 * T * R, T * R, 0.0, DX + t * I + b0 * T * I, T * I);
      for (int64_t b = b0; b < b1; ++b) {
        if (!rows.valid(b, t)) continue;       // carried state: its gradient passes through
        for (int64_t k = 0; k < U; ++k) dup[b * U + k] = flows ? tu[b * U + k] : scalar_t(0);
      }
    }
    sums.put(b0, sum);
    });
  });
  Tensor dw_hh;
  if (gemm) dw_hh = grad_through_states(dZ, u0, Us);
  auto dw_ih = weight_grad(dZ.view({B * T, R}), x.reshape({B * T, I}));
  Tensor dbias = has(bias) ? sums.total(Us.options()) : Tensor();
  return {dX, dw_ih, dw_hh, dbias, du, ds};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lstmkit fast engine: the recurrences of the LSTM family, forward and backward";
  m.def("own_gemm", &own_gemm, "use the engine's own kernel for the per-step float products (1) or BLAS (0); -1 "
        "asks; returns the previous setting (-1: the kernel is not compiled in)");
  m.def("block_work", &block_work, "set the least multiply-adds per thread block and step (n > 0); returns the "
        "previous value");
  m.def("cache_info", &cache_info, "the engine's cache of freed buffers: [mappings, bytes, capacity in bytes]");
  m.def("set_cache_capacity", &set_cache_capacity, "set the cache's capacity in bytes (n >= 0); returns the "
        "previous one");
  m.def("empty_cache", &empty_cache, "hand the cached buffers back to the system; returns the bytes released");
  m.def("gated_forward", &gated_forward);
  m.def("gated_backward", &gated_backward);
  m.def("layernorm_forward", &layernorm_forward);
  m.def("layernorm_backward", &layernorm_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("elman_forward", &elman_forward);
  m.def("elman_backward", &elman_backward);
  m.def("lstm1997_forward", &lstm1997_forward);
  m.def("lstm1997_backward", &lstm1997_backward);
}
