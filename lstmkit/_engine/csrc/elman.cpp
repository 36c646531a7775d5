// The Elman RNN kernels.

#include "driver.h"
#include "kernels.h"
#include "memory.h"

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
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "elman_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto bias_acc = as_acc<acc, scalar_t>(bias, H);
    const auto Ys = sequence_of<scalar_t>(Y, h0);
    scalar_t* z = Z.data_ptr<scalar_t>();
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, H, WI.data_ptr<scalar_t>()};
    rec.forward(sequence_of<const scalar_t>(x), z, {{Ys, W.data_ptr<scalar_t>(), H, z}},
                [&](int64_t b, int64_t t, acc*) { elman_row<acc>(H, act, z + b * H, bias_acc.data(), Ys.at(b, t)); },
                [](int64_t, int64_t) {});
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
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  BlockSums<double> sums(B, has(bias) ? H : 0);    // the bias gradient: column sums of dZ
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "elman_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto Ys = sequence_of<const scalar_t>(Y);
    const auto dZs = sequence_of<scalar_t>(dZ);
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, H, WI.data_ptr<scalar_t>()};
    rec.backward(has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{}, dZs,
                 need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{},
                 {{dZs, W.data_ptr<scalar_t>(), H, dhp, tmp_h.data_ptr<scalar_t>()}}, sums,
                 [&](int64_t b, int64_t t, acc*, acc* sum) {
                   elman_row_backward<acc>(H, act, dhp + b * H, Ys.at(b, t), dZs.at(b, t));
                   if (sums.n) add_row<acc>(H, dZs.at(b, t), sum);
                 });
  });
  auto dw_hh = grad_through_states(dZ, h0, Y);
  auto dw_ih = weight_grad(dZ.view({B * T, H}), x.reshape({B * T, I}));
  Tensor dbias = has(bias) ? sums.total(Y.options()) : Tensor();
  return {dX, dw_ih, dw_hh, dbias, dh};
}

}  // namespace lstmkit
