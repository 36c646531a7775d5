// The linear recurrence h_t = a_t * h_{t-1} + b_t, elementwise over (B, T, H) tensors: the whole
// sequence of the minimal RNNs (minGRU, minLSTM), whose gates read the input only. Each (row,
// unit) pair is independent, so threads split the rows and the inner loop runs over the units,
// contiguous in memory. Backward: dh_{t-1} += a_t dh_t, da_t = dh_t h_{t-1}, db_t = dh_t.

#include <torch/extension.h>

#include <vector>

#include "kernels.h"

namespace lstmkit {

namespace {

template <typename T>
void scan_rows(const T* a, const T* b, const T* h0, T* h, int64_t b0, int64_t b1, int64_t steps, int64_t units) {
  for (int64_t r = b0; r < b1; ++r) {
    const T* prev = h0 + r * units;
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t at = (r * steps + t) * units;
      T* out = h + at;
      for (int64_t u = 0; u < units; ++u) out[u] = a[at + u] * prev[u] + b[at + u];
      prev = out;
    }
  }
}

template <typename T>
void scan_rows_backward(const T* a, const T* h0, const T* h, const T* dh, const T* dfinal, T* da, T* db, T* dh0,
                        int64_t b0, int64_t b1, int64_t steps, int64_t units) {
  std::vector<T> carry(units);
  for (int64_t r = b0; r < b1; ++r) {
    for (int64_t u = 0; u < units; ++u) carry[u] = dfinal ? dfinal[r * units + u] : T(0);
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t at = (r * steps + t) * units;
      const T* prev = t ? h + at - units : h0 + r * units;
      for (int64_t u = 0; u < units; ++u) {
        const T g = carry[u] + dh[at + u];      // d loss / d h_t: from the output and from step t+1
        db[at + u] = g;
        da[at + u] = g * prev[u];
        carry[u] = g * a[at + u];
      }
    }
    for (int64_t u = 0; u < units; ++u) dh0[r * units + u] = carry[u];
  }
}

void check(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& h0) {
  TORCH_CHECK(a.dim() == 3 && a.sizes() == b.sizes(), "linear_scan: a and b must be (B, T, H) of one shape");
  TORCH_CHECK(h0.dim() == 2 && h0.size(0) == a.size(0) && h0.size(1) == a.size(2), "linear_scan: h0 must be (B, H)");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.scalar_type() == h0.scalar_type(), "linear_scan: one dtype");
}

}  // namespace

torch::Tensor linear_scan_forward(torch::Tensor a, torch::Tensor b, torch::Tensor h0) {
  check(a, b, h0);
  a = a.contiguous(), b = b.contiguous(), h0 = h0.contiguous();
  auto h = torch::empty_like(a);
  const int64_t B = a.size(0), T = a.size(1), H = a.size(2);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "linear_scan_forward", [&] {
    const auto *pa = a.data_ptr<scalar_t>(), *pb = b.data_ptr<scalar_t>(), *p0 = h0.data_ptr<scalar_t>();
    auto* ph = h.data_ptr<scalar_t>();
    at::parallel_for(0, B, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, T * H)), [&](int64_t b0, int64_t b1) {
      scan_rows(pa, pb, p0, ph, b0, b1, T, H);
    });
  });
  return h;
}

std::vector<torch::Tensor> linear_scan_backward(torch::Tensor a, torch::Tensor h0, torch::Tensor h, torch::Tensor dh,
                                                torch::Tensor dfinal) {
  check(a, h, h0);
  a = a.contiguous(), h0 = h0.contiguous(), h = h.contiguous(), dh = dh.contiguous();
  const bool has_final = dfinal.numel() > 0;
  if (has_final) dfinal = dfinal.contiguous();
  auto da = torch::empty_like(a), db = torch::empty_like(a), dh0 = torch::empty_like(h0);
  const int64_t B = a.size(0), T = a.size(1), H = a.size(2);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "linear_scan_backward", [&] {
    const auto *pa = a.data_ptr<scalar_t>(), *p0 = h0.data_ptr<scalar_t>(), *ph = h.data_ptr<scalar_t>();
    const auto* pdh = dh.data_ptr<scalar_t>();
    const scalar_t* pdf = has_final ? dfinal.data_ptr<scalar_t>() : nullptr;
    auto *pda = da.data_ptr<scalar_t>(), *pdb = db.data_ptr<scalar_t>(), *pd0 = dh0.data_ptr<scalar_t>();
    at::parallel_for(0, B, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, T * H)), [&](int64_t b0, int64_t b1) {
      scan_rows_backward(pa, p0, ph, pdh, pdf, pda, pdb, pd0, b0, b1, T, H);
    });
  });
  return {da, db, dh0};
}

}  // namespace lstmkit
