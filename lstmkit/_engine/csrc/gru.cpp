// The GRU kernels, both reset placements.

#include "kernels.h"
#include "gemm.h"
#include "memory.h"
#include "sequences.h"
#include "threads.h"

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

}  // namespace lstmkit
