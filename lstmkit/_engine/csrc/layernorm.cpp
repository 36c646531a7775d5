// The layer-norm LSTM kernels.

#include "driver.h"
#include "kernels.h"
#include "memory.h"

namespace lstmkit {

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
// parameters (not from restrict locals in a lambda: those loops stayed scalar).

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
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "layernorm_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const acc eps = eps_;
    const auto b_ = as_acc<acc, scalar_t>(bias, GH), gx_ = as_acc<acc, scalar_t>(gamma_ih, GH),
               gh_ = as_acc<acc, scalar_t>(gamma_hh, GH), gc_ = as_acc<acc, scalar_t>(gamma_c, H),
               bc_ = as_acc<acc, scalar_t>(beta_c, H);
    const acc *bs = b_.data(), *gx = gx_.data(), *gh = gh_.data(), *gc = gc_.data(), *bc = bc_.data();
    const auto Ys = sequence_of<scalar_t>(Y, h0);
    const auto Cs = sequence_of<scalar_t>(C, c0);
    using Saved = Sequence<scalar_t>;
    const auto Gs = Saved::saved(Gates.data_ptr<scalar_t>(), save, T, GH);
    const auto Xh = Saved::saved(Xhat.data_ptr<scalar_t>(), save, T, GH);
    const auto Rh = Saved::saved(Rhat.data_ptr<scalar_t>(), save, T, GH);
    const auto Ch = Saved::saved(Chat.data_ptr<scalar_t>(), save, T, H);
    const auto Rs = Saved::saved(Rstd.data_ptr<scalar_t>(), save, T, 3);
    scalar_t* zx = ZX.data_ptr<scalar_t>();
    scalar_t* zr = ZR.data_ptr<scalar_t>();
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, GH, WI.data_ptr<scalar_t>(), 3 * GH + 2 * H};
    auto row = [&](int64_t b, int64_t t, acc* buf) {
      acc rstd_x, rstd_r, rstd_c;
      acc* __restrict__ xhat = buf;                     // GH each: the two normalised projections,
      acc* __restrict__ rhat = xhat + GH;               // then the activated gates (i, f, g, o)
      acc* __restrict__ a = rhat + GH;
      acc* __restrict__ cn = a + GH;                    // H: c_t; chat: LN(c_t)
      acc* __restrict__ chat = cn + H;
      ln_row<acc>(zx + b * GH, GH, eps, xhat, rstd_x);
      ln_row<acc>(zr + b * GH, GH, eps, rhat, rstd_r);
      lnlstm_gates<acc>(H, xhat, rhat, gx, gh, bs, a);
      lnlstm_cell<acc>(H, a, Cs.before(b, t), cn, Cs.at(b, t));
      ln_row<acc>(cn, H, eps, chat, rstd_c);
      lnlstm_out<acc>(H, a + 3 * H, chat, gc, bc, Ys.at(b, t));
      if (!save) return;
      store_row<acc>(GH, a, Gs.at(b, t));
      store_row<acc>(GH, xhat, Xh.at(b, t));
      store_row<acc>(GH, rhat, Rh.at(b, t));
      store_row<acc>(H, chat, Ch.at(b, t));
      scalar_t* rs = Rs.at(b, t);
      rs[0] = rstd_x; rs[1] = rstd_r; rs[2] = rstd_c;
    };
    // state carried; nothing saved is read for this row
    auto carry = [&](int64_t b, int64_t t) { std::memcpy(Cs.at(b, t), Cs.before(b, t), H * sizeof(scalar_t)); };
    rec.forward(sequence_of<const scalar_t>(x), zx, {{Ys, W.data_ptr<scalar_t>(), GH, zr}}, row, carry);
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
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  // summed per block: bias (GH), gamma_ih (GH), gamma_hh (GH), gamma_c (H), beta_c (H)
  BlockSums<double> sums(B, 3 * GH + 2 * H);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "layernorm_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto gx_ = as_acc<acc, scalar_t>(gamma_ih, GH), gh_ = as_acc<acc, scalar_t>(gamma_hh, GH),
               gc_ = as_acc<acc, scalar_t>(gamma_c, H), bc_ = as_acc<acc, scalar_t>(beta_c, H);
    const acc *gx = gx_.data(), *gh = gh_.data(), *gc = gc_.data(), *bc = bc_.data();
    const auto Cs = sequence_of<const scalar_t>(C, c0);
    const auto Gs = sequence_of<const scalar_t>(Gates);
    const auto Xh = sequence_of<const scalar_t>(Xhat);
    const auto Rh = sequence_of<const scalar_t>(Rhat);
    const auto Ch = sequence_of<const scalar_t>(Chat);
    const auto Rs = sequence_of<const scalar_t>(Rstd);
    const auto dZXs = sequence_of<scalar_t>(dZX);
    const auto dZRs = sequence_of<scalar_t>(dZR);
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, GH, WI.data_ptr<scalar_t>(), 5 * GH + 3 * H};
    auto row = [&](int64_t b, int64_t t, acc* buf, acc* sum) {
      acc* __restrict__ s_b = sum;
      acc* __restrict__ s_gx = s_b + GH;
      acc* __restrict__ s_gh = s_gx + GH;
      acc* __restrict__ s_gc = s_gh + GH;
      acc* __restrict__ s_bc = s_gc + H;
      const scalar_t* __restrict__ gb = Gs.at(b, t);
      const scalar_t* __restrict__ rsb = Rs.at(b, t);
      acc* __restrict__ dz = buf;                   // GH: the pre-activations' gradient
      acc* __restrict__ xhat = dz + GH;
      acc* __restrict__ rhat = xhat + GH;
      acc* __restrict__ dxh = rhat + GH;            // GH each: gradients of the normalised
      acc* __restrict__ drh = dxh + GH;             // projections, then of the projections
      acc* __restrict__ chat = drh + GH;            // H
      acc* __restrict__ dch = chat + H;             // H: gradient of LN(c)
      acc* __restrict__ dcn = dch + H;              // H: of c through LN(c)
      lnlstm_out_backward<acc>(H, Ch.at(b, t), gb + 3 * H, dhp + b * H, gc, bc, chat, dz + 3 * H, dch, s_gc, s_bc);
      ln_row_backward<acc>(dch, chat, H, acc(rsb[2]), dcn);
      lnlstm_cell_backward<acc>(H, gb, Cs.before(b, t), dcn, dcp + b * H, dz);
      add_row<acc>(GH, dz, s_b);
      lnlstm_proj_backward<acc>(GH, dz, Xh.at(b, t), gx, s_gx, xhat, dxh);
      lnlstm_proj_backward<acc>(GH, dz, Rh.at(b, t), gh, s_gh, rhat, drh);
      ln_row_backward<acc>(dxh, xhat, GH, acc(rsb[0]), dZXs.at(b, t));
      ln_row_backward<acc>(drh, rhat, GH, acc(rsb[1]), dZRs.at(b, t));
    };
    rec.backward(has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{}, dZXs,
                 need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{},
                 {{dZRs, W.data_ptr<scalar_t>(), H, dhp, tmp_h.data_ptr<scalar_t>()}}, sums, row);
  });
  auto dw_hh = grad_through_states(dZR, h0, Y);
  auto dw_ih = weight_grad(dZX.view({B * T, GH}), x.reshape({B * T, I}));
  const auto all = sums.total(Y.options());
  return {dX, dw_ih, dw_hh, all.narrow(0, 0, GH), all.narrow(0, GH, GH), all.narrow(0, 2 * GH, GH),
          all.narrow(0, 3 * GH, H), all.narrow(0, 3 * GH + H, H), dh, dc};
}

}  // namespace lstmkit
