// The kernels of the 1997 LSTM (Hochreiter & Schmidhuber), with its truncated gradient.

#include "driver.h"
#include "kernels.h"
#include "memory.h"

namespace lstmkit {

// --------------------------------------------------------------------------------------------
// LSTM 1997: N blocks of S cells; rows i (N), f (N, optional), g (H), o (N, optional).
//   options: Options1997 (options.h), read into Cfg1997 (S = cell_size; g kinds 0 scaled,
//   1 logistic, 2 tanh, 3 identity; h kinds 0 scaled, 1 tanh, 2 identity)
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
  Cfg1997(const Options1997& c, int64_t H_) : H(H_) {
    S = c.cell_size; has_f = c.forget_gate; has_o = c.output_gate; kind_g = int64_t(c.g);
    recurrent = int64_t(c.recurrent); truncate = c.truncate;
    TORCH_CHECK(c.h != Squash1997::logistic, "lstm1997: h is scaled, tanh or identity, got logistic");
    // the kernels' h kinds: 0 scaled, 1 tanh, 2 identity
    kind_h = c.h == Squash1997::scaled ? 0 : c.h == Squash1997::tanh ? 1 : 2;
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
                                     const Options1997& options, bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = s0.size(1);
  const Cfg1997 cfg(options, H);
  const int64_t R = cfg.R, U = cfg.U, S = cfg.S;
  const int64_t Ts = save ? T : 1;
  auto Us = big_empty({B, T, U}, x.options(), save);
  auto Ss = big_empty({B, T, H}, x.options(), save);
  auto Gates = big_empty({B, Ts, R}, x.options(), save);
  auto Z = at::empty({B, R}, x.options());
  const bool gemm = cfg.recurrent != 2;
  const auto W = gemm ? w_hh.contiguous() : Tensor();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "lstm1997_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto Uq = sequence_of<scalar_t>(Us, u0);
    const auto Sq = sequence_of<scalar_t>(Ss, s0);
    const auto Gs = Sequence<scalar_t>::saved(Gates.data_ptr<scalar_t>(), save, T, R);
    scalar_t* z = Z.data_ptr<scalar_t>();
    const bool has_bias = has(bias);
    const auto bias_acc = as_acc<acc, scalar_t>(bias, R);
    const acc* bs = bias_acc.data();
    const int64_t N = cfg.N;
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, R, WI.data_ptr<scalar_t>(), 3 * N + 3 * H};
    auto row = [&](int64_t b, int64_t t, acc* sc) {
      scalar_t* __restrict__ zb = z + b * R;
      if (has_bias) add_row<acc>(R, bs, zb);
      scalar_t* __restrict__ gb = Gs.at(b, t);
      scalar_t* __restrict__ ub = Uq.at(b, t);
      scalar_t* __restrict__ sb = Sq.at(b, t);
      const scalar_t* __restrict__ spb = Sq.before(b, t);
      // one loop per quantity (each vectorizes), the activation kind chosen outside the loops
      acc* __restrict__ GI = sc;
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
    };
    auto carry = [&](int64_t b, int64_t t) { std::memcpy(Sq.at(b, t), Sq.before(b, t), H * sizeof(scalar_t)); };
    rec.forward(sequence_of<const scalar_t>(x), z, {{Uq, gemm ? W.data_ptr<scalar_t>() : nullptr, R, z}}, row, carry);
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
                                      const Tensor& lengths, const Options1997& options, bool need_dx) {
  const int64_t B = Us.size(0), T = Us.size(1), H = Ss.size(2), I = x.size(2);
  const Cfg1997 cfg(options, H);
  const int64_t R = cfg.R, U = cfg.U, S = cfg.S;
  auto dZ = big_empty({B, T, R}, Us.options());
  auto dX = need_dx ? big_empty({B, T, I}, Us.options()) : Tensor();
  const auto WI = w_ih.contiguous();
  BlockSums<double> sums(B, has(bias) ? R : 0);    // the bias gradient: column sums of dZ
  auto du = zeros_like_or(duT, u0).clone();
  auto ds = zeros_like_or(dsT, s0).clone();
  auto tmp_u = at::empty({B, U}, Us.options());
  const bool gemm = cfg.recurrent != 2;
  const bool flows = gemm && !cfg.truncate;   // does the gradient flow through u to the previous step?
  const auto W = gemm ? w_hh.contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Us.scalar_type(), "lstm1997_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto Sq = sequence_of<const scalar_t>(Ss, s0);
    const auto Gs = sequence_of<const scalar_t>(Gates);
    const auto dZs = sequence_of<scalar_t>(dZ);
    scalar_t* dup = du.data_ptr<scalar_t>();
    scalar_t* dsp = ds.data_ptr<scalar_t>();
    const int64_t N = cfg.N;
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, R, WI.data_ptr<scalar_t>(), 8 * H};
    auto row = [&](int64_t b, int64_t t, acc* sc, acc* sum) {
      scalar_t* dzb = dZs.at(b, t);
      const scalar_t* __restrict__ gb = Gs.at(b, t);
      const scalar_t* __restrict__ dub = dup + b * U;
      const scalar_t* __restrict__ scb = Sq.at(b, t);
      const scalar_t* __restrict__ spb = Sq.before(b, t);
      scalar_t* __restrict__ dspb = dsp + b * H;
      // per cell: its block's gates (CI, CF, CO), h(s) and h'(s) from the value, g'(from g)
      acc* __restrict__ CI = sc;
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
      if (sums.n) add_row<acc>(R, dzb, sum);
    };
    rec.backward(has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{}, dZs,
                 need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{},
                 {{dZs, flows ? W.data_ptr<scalar_t>() : nullptr, U, dup, tmp_u.data_ptr<scalar_t>()}}, sums, row);
  });
  Tensor dw_hh;
  if (gemm) dw_hh = grad_through_states(dZ, u0, Us);
  auto dw_ih = weight_grad(dZ.view({B * T, R}), x.reshape({B * T, I}));
  Tensor dbias = has(bias) ? sums.total(Us.options()) : Tensor();
  return {dX, dw_ih, dw_hh, dbias, du, ds};
}

}  // namespace lstmkit
