"""The paper's learning algorithm for the 1997 LSTM network, compiled with numba.

Online gradient descent on ½·SSE with the truncated gradient of H&S97 (docs/classic_tasks.md §1.1): the errors
that reach a cell's state flow back only along its constant error carousel, so the gradient is
exact with forward-accumulated traces (RTRL) of size (cells × net inputs), and nothing has to be
stored per step. Per step, for block j and its cells c = jS … jS+S−1::

    z          = [x(t), u(t−1), 1]                       u = [y^c, y^in, y^out] (or nothing)
    tr_g[c]   += y^in_j · g′(net_c) · z                  ∂s_c/∂W_c
    tr_in[c]  += g(net_c) · σ′(net_in_j) · z             ∂s_c/∂W_in_j
    e_k        = (y_k − t_k) · y_k (1 − y_k)             logistic outputs, ½·SSE
    δs_c       = (W_out[:, c] · e) · y^out_j · h′(s_c)
    ∂/∂W_c     = δs_c · tr_g[c],   ∂/∂W_in_j = Σ_c δs_c · tr_in[c],   ∂/∂W_out_j = δ_out_j · z

This equals autograd through ``cells.make("lstm1997", truncate=True)`` and a logistic output layer
(tested in float64). ``per_step=True`` applies each step's gradient at once (RTRL style, the
weights change within a sequence); otherwise a sequence's gradients are summed and applied at its
end. Both readings are the paper's (docs/classic_tasks.md §0); they agree where the only target is the last step.
"""

from __future__ import annotations

import numpy as np
from numba import njit

G_KINDS = {"scaled": 0, "logistic": 1, "tanh": 2, "identity": 3}


@njit(cache=True, inline="always")
def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


@njit(cache=True, inline="always")
def _act(kind, v):
    """(f(v), f′(v)) of the squashing functions: scaled is 4σ−2 for g, 2σ−1 for h (scale passed)."""
    if kind == 1:
        s = _sig(v)
        return s, s * (1.0 - s)
    if kind == 2:
        t = np.tanh(v)
        return t, 1.0 - t * t
    if kind == 3:
        return v, 1.0
    s = _sig(v)
    return s, s * (1.0 - s)


@njit(cache=True, nogil=True)
def run_sequences(W, Wm, Wo, Wom, x, sym, onehot, offsets, tgt, tmask, N, S, has_o, rec_all, g_kind, h_kind,
                  train, per_step, lr, y):
    """Run (and, with ``train``, learn from) the sequences ``offsets[n] … offsets[n+1]`` in order.

    Inputs are ``x[t]`` (steps, I), or with ``onehot`` the unit ``sym[t]`` of I. Writes each step's
    outputs (before that step's update) into ``y``; updates ``W`` and ``Wo`` in place.
    """
    H = N * S
    O = Wo.shape[0]
    R, Z = W.shape
    I = Wo.shape[1] - H - 1
    Zo = Wo.shape[1]
    n_o = N if has_o else 0
    # gradients go to G (summed, applied at the end of each sequence) or straight into W (per step)
    gW = np.zeros((R, Z))
    gWo = np.zeros((O, Zo))
    GW = W if per_step else gW
    GWo = Wo if per_step else gWo
    f = -lr if per_step else 1.0
    z = np.zeros(Z)
    nz = np.zeros(Z, np.int64)          # indices of the non-zero entries of z (inputs are often one-hot)
    zo = np.zeros(Zo)
    nzo = np.zeros(Zo, np.int64)
    net = np.zeros(R)
    s = np.zeros(H)
    yc = np.zeros(H)
    hs = np.zeros(H)
    hd = np.zeros(H)
    y_in = np.zeros(N)
    y_o = np.ones(N)
    tr_g = np.zeros((H, Z))
    tr_i = np.zeros((H, Z))
    e = np.zeros(O)
    dyc = np.zeros(H)
    g_scale = 4.0 if g_kind == 0 else 1.0
    g_shift = -2.0 if g_kind == 0 else 0.0
    h_scale = 2.0 if h_kind == 0 else 1.0
    h_shift = -1.0 if h_kind == 0 else 0.0
    for n in range(offsets.shape[0] - 1):
        # reset all activations, states and traces before each sequence
        s[:] = 0.0
        yc[:] = 0.0
        y_in[:] = 0.0
        y_o[:] = 0.0 if has_o else 1.0
        tr_g[:, :] = 0.0
        tr_i[:, :] = 0.0
        z[:] = 0.0
        zo[:] = 0.0
        if train and not per_step:
            gW[:, :] = 0.0
            gWo[:, :] = 0.0
        for t in range(offsets[n], offsets[n + 1]):
            # z = [x(t), u(t-1), 1] with u = [y^c, y^in, y^out]; nz lists its non-zero entries
            n_nz = 0
            if onehot:
                if t > offsets[n]:
                    z[sym[t - 1]] = 0.0
                z[sym[t]] = 1.0
                nz[0] = sym[t]
                n_nz = 1
            else:
                for k in range(I):
                    z[k] = x[t, k]
                    if z[k] != 0.0:
                        nz[n_nz] = k
                        n_nz += 1
            if rec_all:
                for k in range(H):
                    z[I + k] = yc[k]
                for k in range(N):
                    z[I + H + k] = y_in[k]
                for k in range(n_o):
                    z[I + H + N + k] = y_o[k]
            z[Z - 1] = 1.0
            for k in range(I, Z):
                if z[k] != 0.0:
                    nz[n_nz] = k
                    n_nz += 1
            for r in range(R):
                acc = 0.0
                for m in range(n_nz):
                    acc += W[r, nz[m]] * z[nz[m]]
                net[r] = acc
            # rows: input gates (N), cell inputs (H), output gates (N, if any)
            for j in range(N):
                y_in[j] = _sig(net[j])
            for c in range(H):
                j = c // S
                gval, gder = _act(g_kind, net[N + c])
                gval = g_scale * gval + g_shift
                gder = g_scale * gder
                s[c] += y_in[j] * gval
                if train:
                    a = y_in[j] * gder
                    b = gval * y_in[j] * (1.0 - y_in[j])
                    for m in range(n_nz):
                        k = nz[m]
                        tr_g[c, k] += a * z[k]
                        tr_i[c, k] += b * z[k]
            if has_o:
                for j in range(N):
                    y_o[j] = _sig(net[N + H + j])
            for c in range(H):
                hv, hder = _act(h_kind, s[c])
                hs[c] = h_scale * hv + h_shift
                hd[c] = h_scale * hder
                yc[c] = y_o[c // S] * hs[c]
            # outputs from zo = [y^c, x, 1]
            n_nzo = 0
            for k in range(H):
                zo[k] = yc[k]
                nzo[n_nzo] = k
                n_nzo += 1
            for m in range(n_nz):
                k = nz[m]
                if k < I:
                    if t > offsets[n] and onehot:
                        zo[H + sym[t - 1]] = 0.0
                    zo[H + k] = z[k]
                    nzo[n_nzo] = H + k
                    n_nzo += 1
            zo[Zo - 1] = 1.0
            nzo[n_nzo] = Zo - 1
            n_nzo += 1
            for k in range(O):
                acc = 0.0
                for m in range(n_nzo):
                    acc += Wo[k, nzo[m]] * zo[nzo[m]]
                y[t, k] = _sig(acc)
            if not train or not tmask[t]:
                continue
            # errors: e = dE/dnet_out for E = 1/2 SSE, then what reaches the cell outputs (old Wo)
            for k in range(O):
                e[k] = (y[t, k] - tgt[t, k]) * y[t, k] * (1.0 - y[t, k])
            for c in range(H):
                acc = 0.0
                for k in range(O):
                    acc += Wo[k, c] * e[k]
                dyc[c] = acc
            for k in range(O):
                for m in range(n_nzo):
                    col = nzo[m]
                    GWo[k, col] += f * Wom[k, col] * e[k] * zo[col]
            for c in range(H):
                j = c // S
                ds = dyc[c] * y_o[j] * hd[c]
                for k in range(Z):
                    GW[N + c, k] += f * Wm[N + c, k] * ds * tr_g[c, k]
                    GW[j, k] += f * Wm[j, k] * ds * tr_i[c, k]
            if has_o:
                for j in range(N):
                    acc = 0.0
                    for v in range(S):
                        acc += dyc[j * S + v] * hs[j * S + v]
                    d_o = acc * y_o[j] * (1.0 - y_o[j])
                    for m in range(n_nz):
                        k = nz[m]
                        GW[N + H + j, k] += f * Wm[N + H + j, k] * d_o * z[k]
        if train and not per_step:
            for r in range(R):
                for k in range(Z):
                    W[r, k] -= lr * gW[r, k]
            for r in range(O):
                for k in range(Zo):
                    Wo[r, k] -= lr * gWo[r, k]
