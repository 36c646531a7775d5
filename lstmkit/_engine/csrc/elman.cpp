// The Elman RNN kernels.

#include "kernels.h"
#include "gemm.h"
#include "memory.h"
#include "sequences.h"
#include "threads.h"

namespace lstmkit {

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

}  // namespace lstmkit
