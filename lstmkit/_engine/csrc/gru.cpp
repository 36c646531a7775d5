// The GRU kernels, both reset placements.

#include "driver.h"
#include "kernels.h"
#include "memory.h"

namespace lstmkit {

// --------------------------------------------------------------------------------------------
// GRU. reset_after (torch.nn.GRU): hp = h W_hh^T + b_hh; r, z from xp + hp; n = tanh(xp_n + r hp_n).
// Cho et al.: r, z from xp + h W_rz^T; n = tanh(xp_n + (r h) W_n^T). h' = (1 - z) n + z h.
// Gate order (r, z, n).
// --------------------------------------------------------------------------------------------

// The GRU's row passes, functions with restrict parameters so that GCC vectorizes them (inside
// the kernels' lambdas, the loops over many arrays stayed scalar).

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

// Batch-first: x (B, T, I), projected here step by step (x_t W_ih^T, one product per step into
// a (B, 3H) buffer), the input-side bias b_x (bias_ih, or Cho's bias) added pointwise; Y (B, T, H);
// Gates (B, T, 3H) = r, z, n; Aux (B, T, H) = the recurrent n-term hp_n (reset_after) or r * h (Cho).
// Reset after runs through the shared recurrence; Cho's step has two dependent products (r h
// needs the first's result), so it keeps a loop of its own.
std::vector<Tensor> gru_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_x,
                                const Tensor& b_hh, const Tensor& h0, const Tensor& lengths, bool reset_after,
                                bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1), H3 = 3 * H;
  auto Y = big_empty({B, T, H}, x.options(), save);
  const int64_t Ts = save ? T : 1;
  auto Gates = big_empty({B, Ts, H3}, x.options(), save);
  auto Aux = big_empty({B, Ts, H}, x.options(), save);
  auto XS = at::empty({B, H3}, x.options());          // x_t W_ih^T
  auto HP = at::empty({B, H3}, x.options());          // h W^T: all gates (reset_after) or r, z (Cho)
  const Rows rows = rows_of(lengths);
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "gru_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto in_bias = as_acc<acc, scalar_t>(b_x, H3);
    const auto rec_bias = as_acc<acc, scalar_t>(b_hh, H3);
    const acc* bx = in_bias.data();
    const acc* bh = rec_bias.data();
    const auto Xs = sequence_of<const scalar_t>(x);
    const auto Ys = sequence_of<scalar_t>(Y, h0);
    const auto Gs = Sequence<scalar_t>::saved(Gates.data_ptr<scalar_t>(), save, T, H3);
    const auto As = Sequence<scalar_t>::saved(Aux.data_ptr<scalar_t>(), save, T, H);
    scalar_t* xs = XS.data_ptr<scalar_t>();
    scalar_t* hpr = HP.data_ptr<scalar_t>();
    const scalar_t* w = W.data_ptr<scalar_t>();
    if (reset_after) {
      const Recurrence<scalar_t> rec{B, T, rows, I, H3, WI.data_ptr<scalar_t>(), 4 * H};
      auto row = [&](int64_t b, int64_t t, acc* sc) {
        gru_after_row<acc>(H, xs + b * H3, bx, hpr + b * H3, bh, Ys.before(b, t), sc, sc + H, sc + 2 * H, sc + 3 * H,
                           Ys.at(b, t), Gs.at(b, t), As.at(b, t));
      };
      rec.forward(Xs, xs, {{Ys, w, H3, hpr}}, row, [](int64_t, int64_t) {});
      return;
    }
    auto HPn = at::empty({B, H}, x.options());
    auto RH = at::empty({B, H}, x.options());
    scalar_t* pn = HPn.data_ptr<scalar_t>();
    scalar_t* rh = RH.data_ptr<scalar_t>();
    for_batch_blocks(B, T * H3 * (H + I), [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wx(true, M, H3, I, WI.data_ptr<scalar_t>(), I, T);
      const PackedWeight<scalar_t> Wrz(true, M, 2 * H, H, w, H, T);
      const PackedWeight<scalar_t> Wn(true, M, H, H, w + 2 * H * H, H, T);
      std::vector<acc> scratch(4 * H);
      acc* sc = scratch.data();
      for (int64_t t = 0; t < T; ++t) {
        Wx.product(Xs.at(b0, t), Xs.row, 0.0, xs + b0 * H3, H3);
        Wrz.product(Ys.before(b0, t), Ys.row_before(t), 0.0, hpr + b0 * 2 * H, 2 * H);
        for (int64_t b = b0; b < b1; ++b)
          gru_cho_rz_row<acc>(H, xs + b * H3, bx, hpr + b * 2 * H, Ys.before(b, t), sc, sc + H, Gs.at(b, t),
                              rh + b * H, As.at(b, t));
        Wn.product(rh + b0 * H, H, 0.0, pn + b0 * H, H);
        for (int64_t b = b0; b < b1; ++b) {
          if (!rows.valid(b, t)) { std::memcpy(Ys.at(b, t), Ys.before(b, t), H * sizeof(scalar_t)); continue; }
          scalar_t* gb = Gs.at(b, t);
          gru_cho_n_row<acc>(H, xs + b * H3 + 2 * H, bx + 2 * H, pn + b * H, Ys.before(b, t), sc, gb + H, gb + 2 * H,
                             Ys.at(b, t));
        }
      }
    });
  });
  return {Y, Gates, Aux};
}

// Batch-first like gru_forward; each step's input gradient dx_t = dxp_t W_ih is one more product
// in the step (need_dx: else none). Returns dx (B, T, I), dw_ih, dw_hh, db_x, db_hh, dh0.
std::vector<Tensor> gru_backward(const Tensor& dY, const Tensor& dhT, const Tensor& x, const Tensor& w_ih,
                                 const Tensor& w_hh, const Tensor& b_x, const Tensor& b_hh, const Tensor& h0,
                                 const Tensor& Y, const Tensor& Gates, const Tensor& Aux, const Tensor& lengths,
                                 bool reset_after, bool need_dx) {
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), H3 = 3 * H, I = x.size(2);
  auto dXp = big_empty({B, T, H3}, Y.options());
  auto dX = need_dx ? big_empty({B, T, I}, Y.options()) : Tensor();
  const auto WI = w_ih.contiguous();
  // reset after: the recurrent projection's gradient is dXp's but for the n columns, dn * r; only
  // those are kept for the weight gradient (zero past a row's length), the step's full row goes
  // through a scratch row
  auto dNR = reset_after ? big_empty({B, T, H}, Y.options()) : Tensor();
  if (reset_after && has(lengths)) dNR.zero_();
  auto dP = reset_after ? at::empty({B, H3}, Y.options()) : Tensor();
  auto dh = zeros_like_or(dhT, h0).clone();
  auto tmp_h = at::empty({B, H}, Y.options());
  const Rows rows = rows_of(lengths);
  const auto W = w_hh.contiguous();
  // the bias gradients are column sums of the gate gradients, taken in the pass that writes them:
  // (dr, dz, dn, dn * r) per block of rows, added in block order after the loop
  const bool bias_sums = has(b_x) || has(b_hh);
  BlockSums<double> sums(B, bias_sums ? 4 * H : 0);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "gru_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto Ys = sequence_of<const scalar_t>(Y, h0);
    const auto Gs = sequence_of<const scalar_t>(Gates);
    const auto As = sequence_of<const scalar_t>(Aux);
    const auto dYs = has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{};
    const auto dXps = sequence_of<scalar_t>(dXp);
    const auto dXs = need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{};
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* th = tmp_h.data_ptr<scalar_t>();
    const scalar_t* w = W.data_ptr<scalar_t>();
    if (reset_after) {
      const auto dNRs = sequence_of<scalar_t>(dNR);
      const Sequence<scalar_t> dPs{dP.data_ptr<scalar_t>(), nullptr, H3, H3, 0};   // the step at hand only
      const Recurrence<scalar_t> rec{B, T, rows, I, H3, WI.data_ptr<scalar_t>()};
      auto row = [&](int64_t b, int64_t t, acc*, acc* s) {
        scalar_t* dxb = dXps.at(b, t);
        gru_after_row_backward<acc>(H, Gs.at(b, t), As.at(b, t), Ys.before(b, t), dhp + b * H, dxb, dPs.at(b, t),
                                    dNRs.at(b, t), th + b * H);
        if (bias_sums) {
          add_row<acc>(H3, dxb, s);
          add_row<acc>(H, dNRs.at(b, t), s + H3);
        }
      };
      rec.backward(dYs, dXps, dXs, {{dPs, w, H, dhp, th, true}}, sums, row);
      return;
    }
    auto dd = at::empty({B, H}, Y.options());
    auto dRH = at::empty({B, H}, Y.options());
    scalar_t* ddp = dd.data_ptr<scalar_t>();
    scalar_t* drh = dRH.data_ptr<scalar_t>();
    for_batch_blocks(B, T * H3 * (H + I), [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wrz(false, M, H, 2 * H, w, H, T);              // dh += d(r, z) @ W_rz
      const PackedWeight<scalar_t> Wn(false, M, H, H, w + 2 * H * H, H, T);       // d(r h) = dn @ W_n
      const PackedWeight<scalar_t> Wx(false, M, I, H3, need_dx ? WI.data_ptr<scalar_t>() : nullptr, I, T);
      std::vector<acc> sum(sums.n, acc(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t b = b0; b < b1; ++b) {
          scalar_t* __restrict__ dhb = dhp + b * H;
          if (dYs.data) add_row<acc>(H, dYs.at(b, t), dhb);
          scalar_t* __restrict__ dxb = dXps.at(b, t);
          if (!rows.valid(b, t)) { std::fill_n(dxb, H3, scalar_t(0)); continue; }
          gru_cho_dn_row<acc>(H, Gs.at(b, t), dhb, dxb + 2 * H);
        }
        Wn.product(dXps.at(b0, t) + 2 * H, dXps.row, 0.0, drh + b0 * H, H);
        for (int64_t b = b0; b < b1; ++b) {
          if (!rows.valid(b, t)) continue;
          scalar_t* dxb = dXps.at(b, t);
          gru_cho_rz_row_backward<acc>(H, Gs.at(b, t), Ys.before(b, t), drh + b * H, dhp + b * H, dxb, ddp + b * H);
          if (bias_sums) add_row<acc>(H3, dxb, sum.data());
        }
        Wrz.product(dXps.at(b0, t), dXps.row, 0.0, th + b0 * H, H);
        if (dXs.data) Wx.product(dXps.at(b0, t), dXps.row, 0.0, dXs.at(b0, t), dXs.row);
        for (int64_t b = b0; b < b1; ++b)
          if (rows.valid(b, t)) sum_rows<acc>(H, ddp + b * H, th + b * H, dhp + b * H);
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

}  // namespace lstmkit
