// What every kernel does around its recurrence: valid rows under lengths, states before each
// step, weight gradients over all rows, row sums, optional parameters.

#pragma once

#include "common.h"

namespace lstmkit {

struct Rows {
  const int64_t* len = nullptr;   // nullptr: all rows valid at every step
  inline bool valid(int64_t b, int64_t t) const { return len == nullptr || t < len[b]; }
};

// An optional tensor argument: Python passes an empty tensor for "absent".
inline bool has(const Tensor& t) { return t.defined() && t.numel() > 0; }

inline Rows rows_of(const Tensor& lengths) {
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
inline Tensor states_before(const Tensor& init, const Tensor& seq) {
  const int64_t T = seq.size(1);
  return at::cat({init.unsqueeze(1), seq.narrow(1, 0, T - 1)}, 1);
}

// d^T s for d (R, N) and s (R, W) over many rows R: a weight's gradient. MKL takes the product
// with a narrow result (W or N below 16, e.g. a handful of input features) several times slower in
// one orientation than in the other (docs/performance.md), so the narrow side goes first and the
// (small) result is transposed.
inline Tensor weight_grad(const Tensor& d, const Tensor& s) {
  if (s.size(1) < 16 && s.size(1) < d.size(1)) return at::mm(s.t(), d).t().contiguous();
  return at::mm(d.t(), s);
}

// The gradient of a weight that multiplies the state before each step: the sum over the B * T
// rows (b, t) of d[b, t]^T s[b, t], where s[b, 0] = init[b] and s[b, t] = seq[b, t - 1]; d (B, T, N)
// and seq (B, T, W) batch-first (d may be a column slice of a contiguous buffer), init (B, W).
// Returns (N, W) without copying the states: one GEMM pairs row r of d with row r - 1 of seq
// over the flattened B * T rows, which is right for every t > 0 and pairs d[b, 0] with
// seq[b - 1, T - 1] for b > 0; a B-row GEMM puts init[b] - seq[b - 1, T - 1] in its place.
inline Tensor grad_through_states(const Tensor& d, const Tensor& init, const Tensor& seq) {
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

inline Tensor zeros_like_or(const Tensor& t, const Tensor& like) {
  return has(t) ? t : at::zeros_like(like);
}

template <typename acc, typename scalar_t>
std::vector<acc> as_acc(const Tensor& t, int64_t n) {
  std::vector<acc> v(n, acc(0));
  if (has(t)) {
    const scalar_t* p = t.data_ptr<scalar_t>();
    for (int64_t k = 0; k < n; ++k) v[k] = p[k];
  }
  return v;
}

}  // namespace lstmkit
