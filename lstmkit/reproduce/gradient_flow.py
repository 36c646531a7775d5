"""Vanishing gradients made visible (docs/classic_tasks.md §2.11): ‖∂L/∂h_{T−k}‖ against the lag k.

The loss is the squared error of a linear read-out of the last state on the adding problem
(L fixed at T). Each model runs its reference loop step by step, so every intermediate state
is at hand, and ``torch.autograd.grad`` gives the gradient of the loss with respect to all of
them. g_k is the batch mean of ‖∂L/∂h_{T−k}‖₂ (and of the cell state, ‖∂L/∂c_{T−k}‖₂, for the
LSTMs). A straight line fitted to log g_k over k ∈ [10, T−1] gives the per-step factor e^λ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import cells
from ..data.synthetic import adding_hs97

__all__ = ["FlowModel", "MODELS", "gradient_flow", "fit_decay"]


@dataclass(frozen=True)
class FlowModel:
    name: str
    cell: str
    options: dict
    rho: float | None = None            # Elman: recurrent matrix = orthogonal × rho


def _models() -> tuple[FlowModel, ...]:
    out = [FlowModel(f"elman-tanh ρ={r}", "elman", {"activation": "tanh"}, r) for r in (0.5, 0.9, 1.0, 1.1, 1.5)]
    out += [FlowModel(f"elman-logistic ρ={r}", "elman", {"activation": "logistic"}, r) for r in (1.0, 4.0)]
    out += [FlowModel("lstm1997 truncated", "lstm1997", {"truncate": True}),
            FlowModel("lstm1997 full BPTT", "lstm1997", {"truncate": False})]
    out += [FlowModel(f"lstm forget bias {b}", "lstm", {"gate_bias": {"f": float(b)}}) for b in (0, 1, 3)]
    out += [FlowModel("gru", "gru", {})]
    return tuple(out)


MODELS = _models()


def _make(model: FlowModel, hidden: int) -> nn.Module:
    cell = cells.make(model.cell, 2, hidden, **model.options)
    if model.rho is not None:
        with torch.no_grad():
            nn.init.orthogonal_(cell.weight_hh)
            cell.weight_hh.mul_(model.rho)
    return cell


def _derivative(model: FlowModel, cell, x_t, state) -> torch.Tensor:
    """f′(net) of an Elman step, for the bound ρ·E|f′|."""
    net = nn.functional.linear(x_t, cell.weight_ih, cell.bias) + nn.functional.linear(state[0], cell.weight_hh)
    if model.options.get("activation") == "logistic":
        s = torch.sigmoid(net)
        return s * (1 - s)
    return 1 - torch.tanh(net) ** 2


def gradient_flow(model: FlowModel, *, T: int = 200, hidden: int = 64, batch: int = 256, seed: int = 0,
                  train_steps: int = 0, lr: float = 1e-3) -> dict:
    """g_k for k = 0 … T−1 (and the cell-state g_k where there is one), after ``train_steps``
    Adam steps on the task (0: at initialisation)."""
    torch.manual_seed(seed)
    cell = _make(model, hidden).double()
    head = nn.Linear(hidden, 1).double()
    data = adding_hs97(batch, T, seed=seed, dtype=torch.float64)
    x, y = data.x[:, :T], data.target[torch.arange(batch), data.lengths - 1]   # (B, T, 2), (B, 1)
    optimizer = torch.optim.Adam(list(cell.parameters()) + list(head.parameters()), lr=lr)
    for step in range(train_steps):
        batch_data = adding_hs97(batch, T, seed=seed * 1_000_003 + step + 1, dtype=torch.float64)
        xs, ys = batch_data.x[:, :T], batch_data.target[torch.arange(batch), batch_data.lengths - 1]
        state = cell.init_state(batch, dtype=torch.float64)
        for t in range(T):
            h, state = cell(xs[:, t], state)
        loss = nn.functional.mse_loss(head(h), ys)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(list(cell.parameters()) + list(head.parameters()), 1.0)
        optimizer.step()
    state = cell.init_state(batch, dtype=torch.float64)
    hs, cs, fprime = [], [], []
    for t in range(T):
        if model.rho is not None:
            fprime.append(_derivative(model, cell, x[:, t], state).mean().item())
        h, state = cell(x[:, t], state)
        hs.append(h)
        if model.cell in ("lstm", "lstm1997"):
            cs.append(state[1])
    loss = nn.functional.mse_loss(head(hs[-1]), y, reduction="sum") / 2
    grads = torch.autograd.grad(loss, hs + cs, allow_unused=True)
    norm = lambda g: 0.0 if g is None else g.norm(dim=1).mean().item()  # noqa: E731
    g_h = [norm(g) for g in grads[:T]][::-1]                                # index k = T-1-t
    out = {"model": model.name, "g_h": g_h, "train_steps": train_steps}
    if cs:
        out["g_c"] = [norm(g) for g in grads[T:]][::-1]
    out["factor_h"] = fit_decay(g_h)
    if cs:
        out["factor_c"] = fit_decay(out["g_c"])
    if fprime:
        out["bound"] = model.rho * float(np.mean(fprime))
    return out


def fit_decay(g: list[float], first: int = 10) -> float | None:
    """e^λ of the least-squares line through log g_k for k ≥ ``first`` (None where g_k is 0)."""
    k = np.arange(len(g))[first:]
    v = np.asarray(g[first:])
    ok = (v > 0) & np.isfinite(v)
    if ok.sum() < 2:
        return None
    slope = np.polyfit(k[ok], np.log(v[ok]), 1)[0]
    return float(math.exp(slope))
