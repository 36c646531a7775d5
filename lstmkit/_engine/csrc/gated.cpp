// Gated LSTM kernels: lstm, peephole and the eight variants of Greff et al.

#include "driver.h"
#include "kernels.h"
#include "memory.h"

namespace lstmkit {

// --------------------------------------------------------------------------------------------
// Gated LSTM: lstm, peephole and the eight Greff variants.
//   options: GatedOptions (options.h), read into GatedCfg with the gates' offsets
// Gate rows of xp / w_hh: the present gates among (i, f, g, o) in that order, H rows each.
// With gate_recurrence, the K gates with parameters among (i, f, o) feed w_gg (K*H, K*H) and
// their previous activations are the third state a (B, K*H).
// --------------------------------------------------------------------------------------------

struct GatedCfg {
  bool has_i, has_f, coupled, has_o, id_g, id_h, peep, fgr;
  int64_t H, G, K, oi = -1, of = -1, og = -1, oo = -1;   // column offsets in the gate rows
  int64_t ki = -1, kf = -1, ko = -1;                      // offsets in the recurrent gates a
  GatedCfg(const GatedOptions& c, int64_t H_) : H(H_) {
    has_i = c.input_gate; has_f = c.forget_gate && !c.coupled; coupled = c.coupled; has_o = c.output_gate;
    id_g = c.identity_g; id_h = c.identity_h; peep = c.peepholes; fgr = c.gate_recurrence;
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
                                  const GatedOptions& options, bool save) {
  // Batch-first: x (B, T, I); each step's pre-activations are x_t W_ih^T + h W_hh^T (two products
  // into one buffer: no (B, T, GH) projection is written or read) + bias; Y, C (B, T, H); Gates (B, T, GH).
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1);
  const GatedCfg cfg(options, H);
  const int64_t GH = cfg.G * H, KH = cfg.K * H;
  auto Y = big_empty({B, T, H}, x.options(), save);
  auto C = big_empty({B, save ? T : 1, H}, x.options(), save);   // unsaved: one slot per row, updated in place
  auto Gates = big_empty({B, save ? T : 1, GH}, x.options(), save);
  auto A = cfg.fgr ? big_empty({B, T, KH}, x.options(), save) : Tensor();
  auto Z = at::empty({B, GH}, x.options());                          // x_t W_ih^T + h W_hh^T
  auto ZG = cfg.fgr ? at::empty({B, KH}, x.options()) : Tensor();   // previous gates -> gate rows
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  const auto WG = cfg.fgr ? w_gg.contiguous() : Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "gated_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto peep = peepholes_as_acc<acc, scalar_t>(cfg, p_i, p_f, p_o);   // i, f, o; zeros where absent
    const acc* pi = peep.data();
    const acc* pf = pi + H;
    const acc* po = pf + H;
    const auto Ys = sequence_of<scalar_t>(Y, h0);
    // a row reads its previous cell state before it writes the new one, so without a backward
    // to save for each row's cell state lives in one slot (no (B, T, H) buffer to fault in)
    const auto Cs = save ? sequence_of<scalar_t>(C, c0)
                         : Sequence<scalar_t>{C.data_ptr<scalar_t>(), c0.data_ptr<scalar_t>(), H, H, 0};
    const auto As = cfg.fgr ? sequence_of<scalar_t>(A, a0) : Sequence<scalar_t>{};
    const auto Gs = Sequence<scalar_t>::saved(Gates.data_ptr<scalar_t>(), save, T, GH);
    scalar_t* z = Z.data_ptr<scalar_t>();
    scalar_t* zg = cfg.fgr ? ZG.data_ptr<scalar_t>() : nullptr;
    const auto bias_acc = as_acc<acc, scalar_t>(bias, GH);
    const acc* bs = bias_acc.data();
    std::vector<Feedback<scalar_t>> feedback{{Ys, W.data_ptr<scalar_t>(), GH, z}};
    if (cfg.fgr) feedback.push_back({As, WG.data_ptr<scalar_t>(), KH, zg});
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, GH, WI.data_ptr<scalar_t>(), 6 * H};
    auto row = [&](int64_t b, int64_t t, acc* sc) {
      scalar_t* __restrict__ yb = Ys.at(b, t);
      scalar_t* __restrict__ cb = Cs.at(b, t);
      const scalar_t* __restrict__ cpb = Cs.before(b, t);
      scalar_t* __restrict__ zb = z + b * GH;
      for (int64_t k = 0; k < GH; ++k) zb[k] = acc(zb[k]) + bs[k];   // pre-activations
      acc* __restrict__ I = sc;
      acc* __restrict__ Fg = sc + H;
      acc* __restrict__ G = sc + 2 * H;
      acc* __restrict__ O = sc + 3 * H;
      acc* __restrict__ Cp = sc + 4 * H;
      acc* __restrict__ R = sc + 5 * H;       // gate-recurrence term of the gate at hand
      for (int64_t k = 0; k < H; ++k) Cp[k] = cpb[k];
      auto recurrence = [&](int64_t off) {
        if (zg) { for (int64_t k = 0; k < H; ++k) R[k] = zg[b * KH + off + k]; }
        else { for (int64_t k = 0; k < H; ++k) R[k] = 0; }
      };
      if (cfg.has_i) {
        recurrence(cfg.ki);
        for (int64_t k = 0; k < H; ++k) I[k] = sigm<acc>(acc(zb[cfg.oi + k]) + R[k] + pi[k] * Cp[k]);
      } else {
        for (int64_t k = 0; k < H; ++k) I[k] = 1;
      }
      if (cfg.coupled) {
        for (int64_t k = 0; k < H; ++k) Fg[k] = 1 - I[k];
      } else if (cfg.has_f) {
        recurrence(cfg.kf);
        for (int64_t k = 0; k < H; ++k) Fg[k] = sigm<acc>(acc(zb[cfg.of + k]) + R[k] + pf[k] * Cp[k]);
      } else {
        for (int64_t k = 0; k < H; ++k) Fg[k] = 1;
      }
      if (cfg.id_g) { for (int64_t k = 0; k < H; ++k) G[k] = zb[cfg.og + k]; }
      else { for (int64_t k = 0; k < H; ++k) G[k] = tanh_<acc>(acc(zb[cfg.og + k])); }
      for (int64_t k = 0; k < H; ++k) Cp[k] = G[k] * I[k] + Cp[k] * Fg[k];     // Cp now holds c_t
      if (cfg.has_o) {
        recurrence(cfg.ko);
        for (int64_t k = 0; k < H; ++k) O[k] = sigm<acc>(acc(zb[cfg.oo + k]) + R[k] + po[k] * Cp[k]);
      } else {
        for (int64_t k = 0; k < H; ++k) O[k] = 1;
      }
      if (cfg.id_h) { for (int64_t k = 0; k < H; ++k) yb[k] = Cp[k] * O[k]; }
      else { for (int64_t k = 0; k < H; ++k) yb[k] = tanh_<acc>(Cp[k]) * O[k]; }
      for (int64_t k = 0; k < H; ++k) cb[k] = Cp[k];
      scalar_t* __restrict__ gb = Gs.at(b, t);
      if (cfg.has_i) for (int64_t k = 0; k < H; ++k) gb[cfg.oi + k] = I[k];
      if (cfg.has_f) for (int64_t k = 0; k < H; ++k) gb[cfg.of + k] = Fg[k];
      for (int64_t k = 0; k < H; ++k) gb[cfg.og + k] = G[k];
      if (cfg.has_o) for (int64_t k = 0; k < H; ++k) gb[cfg.oo + k] = O[k];
      if (cfg.fgr) {
        scalar_t* ab = As.at(b, t);
        if (cfg.has_i) for (int64_t k = 0; k < H; ++k) ab[cfg.ki + k] = I[k];
        if (cfg.has_f) for (int64_t k = 0; k < H; ++k) ab[cfg.kf + k] = Fg[k];
        if (cfg.has_o) for (int64_t k = 0; k < H; ++k) ab[cfg.ko + k] = O[k];
      }
    };
    auto carry = [&](int64_t b, int64_t t) {
      if (Cs.at(b, t) != Cs.before(b, t)) std::memcpy(Cs.at(b, t), Cs.before(b, t), H * sizeof(scalar_t));
    };
    rec.forward(sequence_of<const scalar_t>(x), z, feedback, row, carry);
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
                                   const GatedOptions& options, bool need_dx) {
  // Batch-first like gated_forward; dY (B, T, H) or empty. Each step's input gradient dx_t = dz_t W_ih
  // is one more product in the step (need_dx: else none); returns dx (B, T, I) and every parameter's gradient.
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), I = x.size(2);
  const GatedCfg cfg(options, H);
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
  const auto W = w_hh.contiguous();
  const auto WG = cfg.fgr ? w_gg.contiguous() : Tensor();
  BlockSums<double> sums(B, has(bias) ? GH : 0);    // the bias gradient: column sums of dZ

  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "gated_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto peep = peepholes_as_acc<acc, scalar_t>(cfg, p_i, p_f, p_o);
    const acc* pi = peep.data();
    const acc* pf = pi + H;
    const acc* po = pf + H;
    const auto Cs = sequence_of<const scalar_t>(C, c0);
    const auto Gs = sequence_of<const scalar_t>(Gates);
    const auto dZs = sequence_of<scalar_t>(dZ);
    const auto dZr = cfg.fgr ? sequence_of<scalar_t>(dZrec) : Sequence<scalar_t>{};
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dap = cfg.fgr ? da.data_ptr<scalar_t>() : nullptr;
    std::vector<FeedbackGrad<scalar_t>> feedback{{dZs, W.data_ptr<scalar_t>(), H, dhp, tmp_h.data_ptr<scalar_t>()}};
    if (cfg.fgr) feedback.push_back({dZr, WG.data_ptr<scalar_t>(), KH, dap, tmp_a.data_ptr<scalar_t>()});
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, GH, WI.data_ptr<scalar_t>(), 10 * H};
    auto row = [&](int64_t b, int64_t t, acc* sc, acc* sum) {
      scalar_t* __restrict__ dzb = dZs.at(b, t);
      scalar_t* __restrict__ dzr = cfg.fgr ? dZr.at(b, t) : nullptr;
      const scalar_t* __restrict__ dhb = dhp + b * H;
      scalar_t* __restrict__ dcb = dcp + b * H;
      const scalar_t* __restrict__ gb = Gs.at(b, t);
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
      const scalar_t* __restrict__ ccb = Cs.at(b, t);
      const scalar_t* __restrict__ cpb = Cs.before(b, t);
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
        if (dzr) for (int64_t k = 0; k < H; ++k) dzr[cfg.ko + k] = DZ[k];
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
        if (dzr) for (int64_t k = 0; k < H; ++k) dzr[cfg.ki + k] = DI[k];
      }
      if (cfg.has_f) {
        logistic_gate_backward<acc>(H, DF, Fg, pf, DC, dzb + cfg.of);
        if (dzr) for (int64_t k = 0; k < H; ++k) dzr[cfg.kf + k] = DF[k];
      }
      for (int64_t k = 0; k < H; ++k) dcb[k] = DC[k];
      if (sums.n) add_row<acc>(GH, dzb, sum);
    };
    rec.backward(has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{}, dZs,
                 need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{}, feedback, sums, row);
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

}  // namespace lstmkit
