// The sLSTM kernels (the xLSTM's scalar-memory cell).

#include "driver.h"
#include "kernels.h"
#include "memory.h"

namespace lstmkit {

// --------------------------------------------------------------------------------------------
// sLSTM: pre-activations (i, f, z, o) = x W_ih^T + h W_hh^T + b, W_hh (4H, H) block-diagonal by
// head (the adapter expands the cell's blocks); log f = log sigmoid(f) or f itself (exp_forget);
//   m = max(log f + m', i), i' = exp(i - m), f' = exp(log f + m' - m),
//   c = f' c' + i' tanh(z), n = f' n' + i', h = sigmoid(o) c / n.
// States h (fed back), c, n, m, each (B, H). The backward recomputes the activations from the
// saved pre-activations and the states before the step; the gradient of m = max(a, i) is split
// evenly on a tie, as torch.maximum's is, so the step's autograd gradient is matched exactly.
// --------------------------------------------------------------------------------------------

template <typename acc>
LSTMKIT_INLINE acc log_sigmoid(acc v) { return std::min(v, acc(0)) - std::log1p(std::exp(-std::abs(v))); }

std::vector<Tensor> slstm_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                  const Tensor& h0, const Tensor& c0, const Tensor& n0, const Tensor& m0,
                                  const Tensor& lengths, bool exp_forget, bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = h0.size(1), GH = 4 * H;
  auto Y = big_empty({B, T, H}, x.options(), save);
  auto C = big_empty({B, T, H}, x.options(), save);
  auto N = big_empty({B, T, H}, x.options(), save);
  auto M = big_empty({B, T, H}, x.options(), save);
  auto Pre = big_empty({B, save ? T : 1, GH}, x.options(), save);
  auto Z = at::empty({B, GH}, x.options());
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "slstm_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto bias_acc = as_acc<acc, scalar_t>(bias, GH);
    const acc* bs = bias_acc.data();
    const auto Ys = sequence_of<scalar_t>(Y, h0);
    const auto Cs = sequence_of<scalar_t>(C, c0);
    const auto Ns = sequence_of<scalar_t>(N, n0);
    const auto Ms = sequence_of<scalar_t>(M, m0);
    const auto Ps = Sequence<scalar_t>::saved(Pre.data_ptr<scalar_t>(), save, T, GH);
    scalar_t* z = Z.data_ptr<scalar_t>();
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, GH, WI.data_ptr<scalar_t>()};
    auto row = [&](int64_t b, int64_t t, acc*) {
      const scalar_t* __restrict__ zb = z + b * GH;
      scalar_t* __restrict__ pb = Ps.at(b, t);
      const scalar_t* __restrict__ cp = Cs.before(b, t);
      const scalar_t* __restrict__ np = Ns.before(b, t);
      const scalar_t* __restrict__ mp = Ms.before(b, t);
      scalar_t* __restrict__ yb = Ys.at(b, t);
      scalar_t* __restrict__ cb = Cs.at(b, t);
      scalar_t* __restrict__ nb = Ns.at(b, t);
      scalar_t* __restrict__ mb = Ms.at(b, t);
      for (int64_t k = 0; k < H; ++k) {
        const acc i = acc(zb[k]) + bs[k], f = acc(zb[H + k]) + bs[H + k];
        const acc g = acc(zb[2 * H + k]) + bs[2 * H + k], o = acc(zb[3 * H + k]) + bs[3 * H + k];
        pb[k] = i; pb[H + k] = f; pb[2 * H + k] = g; pb[3 * H + k] = o;
        const acc a = (exp_forget ? f : log_sigmoid<acc>(f)) + acc(mp[k]);
        const acc m = std::max(a, i);
        const acc ig = exp_<acc>(i - m), fg = exp_<acc>(a - m);
        const acc c = fg * acc(cp[k]) + ig * tanh_<acc>(g);
        const acc n = fg * acc(np[k]) + ig;
        cb[k] = c; nb[k] = n; mb[k] = m;
        yb[k] = sigm<acc>(o) * c / n;
      }
    };
    auto carry = [&](int64_t b, int64_t t) {
      for (const auto* s : {&Cs, &Ns, &Ms}) std::memcpy(s->at(b, t), s->before(b, t), H * sizeof(scalar_t));
    };
    rec.forward(sequence_of<const scalar_t>(x), z, {{Ys, W.data_ptr<scalar_t>(), GH, z}}, row, carry);
  });
  return {Y, C, N, M, Pre};
}

// Batch-first like slstm_forward; dY (B, T, H) or empty, dhT/dcT/dnT/dmT the final states'
// gradients (or empty). Returns dx, dw_ih, dw_hh (4H, H: the adapter keeps its diagonal blocks),
// dbias, dh0, dc0, dn0, dm0.
std::vector<Tensor> slstm_backward(const Tensor& dY, const Tensor& dhT, const Tensor& dcT, const Tensor& dnT,
                                   const Tensor& dmT, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                                   const Tensor& bias, const Tensor& h0, const Tensor& c0, const Tensor& n0,
                                   const Tensor& m0, const Tensor& Y, const Tensor& C, const Tensor& N,
                                   const Tensor& M, const Tensor& Pre, const Tensor& lengths, bool exp_forget,
                                   bool need_dx) {
  const int64_t B = Y.size(0), T = Y.size(1), H = Y.size(2), I = x.size(2), GH = 4 * H;
  auto dZ = big_empty({B, T, GH}, Y.options());
  auto dX = need_dx ? big_empty({B, T, I}, Y.options()) : Tensor();
  auto dh = zeros_like_or(dhT, h0).clone();
  auto dc = zeros_like_or(dcT, c0).clone();
  auto dn = zeros_like_or(dnT, n0).clone();
  auto dm = zeros_like_or(dmT, m0).clone();
  auto tmp_h = at::empty({B, H}, Y.options());
  const auto W = w_hh.contiguous();
  const auto WI = w_ih.contiguous();
  BlockSums<double> sums(B, has(bias) ? GH : 0);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, Y.scalar_type(), "slstm_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto Cs = sequence_of<const scalar_t>(C, c0);
    const auto Ns = sequence_of<const scalar_t>(N, n0);
    const auto Ms = sequence_of<const scalar_t>(M, m0);
    const auto Ps = sequence_of<const scalar_t>(Pre);
    const auto dZs = sequence_of<scalar_t>(dZ);
    scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dnp = dn.data_ptr<scalar_t>();
    scalar_t* dmp = dm.data_ptr<scalar_t>();
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, GH, WI.data_ptr<scalar_t>()};
    auto row = [&](int64_t b, int64_t t, acc*, acc* sum) {
      const scalar_t* __restrict__ pb = Ps.at(b, t);
      const scalar_t* __restrict__ cp = Cs.before(b, t);
      const scalar_t* __restrict__ np = Ns.before(b, t);
      const scalar_t* __restrict__ mp = Ms.before(b, t);
      const scalar_t* __restrict__ cb = Cs.at(b, t);
      const scalar_t* __restrict__ nb = Ns.at(b, t);
      const scalar_t* __restrict__ dhb = dhp + b * H;
      scalar_t* __restrict__ dcb = dcp + b * H;
      scalar_t* __restrict__ dnb = dnp + b * H;
      scalar_t* __restrict__ dmb = dmp + b * H;
      scalar_t* __restrict__ dzb = dZs.at(b, t);
      for (int64_t k = 0; k < H; ++k) {
        const acc i = pb[k], f = pb[H + k], g = pb[2 * H + k], o = pb[3 * H + k];
        const acc a = (exp_forget ? f : log_sigmoid<acc>(f)) + acc(mp[k]);
        const acc m = std::max(a, i);
        const acc ig = exp_<acc>(i - m), fg = exp_<acc>(a - m), tz = tanh_<acc>(g), so = sigm<acc>(o);
        const acc c = cb[k], n = nb[k], dhk = dhb[k];
        // h = so c / n
        const acc d_so = dhk * c / n;
        const acc d_c = acc(dcb[k]) + dhk * so / n;
        const acc d_n = acc(dnb[k]) - dhk * so * c / (n * n);
        // c = fg c' + ig tz, n = fg n' + ig
        const acc d_fg = d_c * acc(cp[k]) + d_n * acc(np[k]);
        const acc d_ig = d_c * tz + d_n;
        // ig = exp(i - m), fg = exp(a - m), m = max(a, i)
        acc d_i = d_ig * ig, d_a = d_fg * fg;
        const acc d_m = acc(dmb[k]) - d_ig * ig - d_fg * fg;
        if (a > i) d_a += d_m;
        else if (i > a) d_i += d_m;
        else { d_a += d_m / 2; d_i += d_m / 2; }
        dzb[k] = d_i;
        dzb[H + k] = exp_forget ? d_a : d_a * sigm<acc>(-f);          // d log sigmoid(f) / df = sigmoid(-f)
        dzb[2 * H + k] = d_c * ig * (1 - tz * tz);
        dzb[3 * H + k] = d_so * so * (1 - so);
        dcb[k] = d_c * fg;
        dnb[k] = d_n * fg;
        dmb[k] = d_a;                                                 // a = log f + m'
      }
      if (sums.n) add_row<acc>(GH, dzb, sum);
    };
    rec.backward(has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{}, dZs,
                 need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{},
                 {{dZs, W.data_ptr<scalar_t>(), H, dhp, tmp_h.data_ptr<scalar_t>()}}, sums, row);
  });
  auto dw_hh = grad_through_states(dZ, h0, Y);
  auto dw_ih = weight_grad(dZ.view({B * T, GH}), x.reshape({B * T, I}));
  Tensor dbias = has(bias) ? sums.total(Y.options()) : Tensor();
  return {dX, dw_ih, dw_hh, dbias, dh, dc, dn, dm};
}

}  // namespace lstmkit
