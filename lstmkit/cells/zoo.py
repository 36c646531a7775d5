"""The wider family of recurrent cells, each written as a :class:`~lstmkit.cells.UserCell`: its products
and its pointwise step, which the engine runs as fast as its own kernels.

Parameters carry the names and shapes of PyPI ``torchrecurrent``'s cells (``weight_ih``, ``bias_hh``,
``vector_u``, ...), so a state dict moves between the two; the tests check each cell equal to
torchrecurrent's on the same weights. Initialisation: every parameter U(-1/sqrt(H), 1/sqrt(H))
(``torch.nn.LSTM``'s default), the named scalars at their papers' values.

>>> import torch
>>> from lstmkit import cells
>>> cell = cells.make("indrnn", 3, 4)
>>> y, (h,) = cell.step(torch.ones(2, 3))
>>> tuple(y.shape)
(2, 4)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import fail
from ._base import State
from ._registry import register
from .user import UserCell

__all__ = ["IndRNN", "JANET", "LiGRU", "CoRNN", "UnICORNN", "BR", "NBR", "FastRNN", "FastGRNN", "STAR", "CFN",
           "AntisymmetricRNN", "GatedAntisymmetricRNN", "UGRNN"]

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


class _Zoo(UserCell):
    """One state of H units, a matrix on the input and (optionally) one on the state, with biases:
    ``weight_ih`` (ih·H, I), ``weight_hh`` (hh·H, H) or a vector, ``bias_ih`` and ``bias_hh``."""

    def __init__(self, input_size: int, hidden_size: int, *, ih: int = 1, hh: int | None = 1,
                 hh_vector: int | None = None):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(ih * H, input_size))
        self.bias_ih = nn.Parameter(torch.empty(ih * H))
        if hh is not None:
            self.weight_hh = nn.Parameter(torch.empty(hh * H, H))
            self.bias_hh = nn.Parameter(torch.empty(hh * H))
        elif hh_vector is not None:
            self.weight_hh = nn.Parameter(torch.empty(hh_vector * H))
            self.bias_hh = nn.Parameter(torch.empty(hh_vector * H))

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.hidden_size,),)

    def products(self) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        w = getattr(self, "weight_hh", None)
        return self.weight_ih, (w if w is not None and w.dim() == 2 else None,)

    def _activation(self, name: str, value: str):
        if value not in _ACTIVATIONS:
            fail(type(self).__name__, name, f"one of {sorted(_ACTIVATIONS)}", repr(value))
        return value


class IndRNN(_Zoo):
    r"""Independently recurrent network (Li et al. 2018), each unit its own recurrence:

    .. math::  h_t = \phi(W x_t + b_{ih} + u \odot h_{t-1} + b_{hh}),\qquad \phi \in \{\mathrm{relu}, \tanh, \sigma\}

    Parameters: ``weight_ih`` (H, I), ``vector_u`` (H), ``bias_ih`` and ``bias_hh`` (H). State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "relu"):
        super().__init__(input_size, hidden_size, hh=None)
        self.nonlinearity = self._activation("nonlinearity", nonlinearity)
        self.vector_u = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        self._init_uniform(None)

    def pointwise(self, zx: Tensor, zs: tuple, state: State) -> tuple[Tensor, ...]:
        act = _ACTIVATIONS[self.nonlinearity]
        return (act(zx + self.bias_ih + self.vector_u * state[0] + self.bias_hh),)


class JANET(_Zoo):
    r"""Just Another NETwork (van der Westhuizen & Lasenby 2018): the LSTM with a forget gate only.

    .. math::  [s, \hat c] = W x_t + b_{ih} + U c_{t-1} + b_{hh},\qquad
               c_t = \sigma(s) \odot c_{t-1} + (1 - \sigma(s - \beta)) \odot \tanh(\hat c)

    Parameters: ``weight_ih`` (2H, I), ``weight_hh`` (2H, H), ``bias_ih`` and ``bias_hh`` (2H), ``beta`` (a
    scalar). State: ``(c,)``, the output (torchrecurrent's (h, c) holds it twice).
    """

    def __init__(self, input_size: int, hidden_size: int, *, beta: float = 1.0):
        super().__init__(input_size, hidden_size, ih=2, hh=2)
        self.beta = nn.Parameter(torch.empty(()))
        self._init_uniform(None)
        with torch.no_grad():
            self.beta.fill_(beta)

    def pointwise(self, zx, zs, state):
        s, c_hat = (zx + self.bias_ih + zs[0] + self.bias_hh).chunk(2, -1)
        return (torch.sigmoid(s) * state[0] + (1.0 - torch.sigmoid(s - self.beta)) * torch.tanh(c_hat),)


class LiGRU(_Zoo):
    r"""Light GRU (Ravanelli et al. 2018): no reset gate and a ReLU candidate (the paper's batch
    normalisation left out, as torchrecurrent does).

    .. math::  [u, c] = W x_t + b_{ih} + U h_{t-1} + b_{hh},\qquad z = \sigma(u),\qquad
               h_t = z \odot h_{t-1} + (1 - z) \odot \mathrm{relu}(c)

    Parameters: ``weight_ih`` (2H, I), ``weight_hh`` (2H, H), ``bias_ih`` and ``bias_hh`` (2H). State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, ih=2, hh=2)
        self._init_uniform(None)

    def pointwise(self, zx, zs, state):
        u, c = (zx + self.bias_ih + zs[0] + self.bias_hh).chunk(2, -1)
        z = torch.sigmoid(u)
        return ((1.0 - z) * torch.relu(c) + z * state[0],)


class CoRNN(UserCell):
    r"""Coupled oscillatory RNN (Rusch & Mishra 2021): position y and velocity z of coupled oscillators.

    .. math::  z_t = z_{t-1} + \Delta t\,(\tanh(W x_t + W_y y_{t-1} + W_z z_{t-1} + b) - \gamma y_{t-1}
               - \epsilon z_{t-1}),\qquad y_t = y_{t-1} + \Delta t\, z_t

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` and ``weight_ch`` (H, H), ``bias_ih``, ``bias_hh`` and
    ``bias_ch`` (H; b is their sum). State: ``(y, z)``; the output is y.
    """

    def __init__(self, input_size: int, hidden_size: int, *, dt: float = 0.1, gamma: float = 1.0,
                 epsilon: float = 1.0):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.dt, self.gamma, self.epsilon = float(dt), float(gamma), float(epsilon)
        self.weight_ih = nn.Parameter(torch.empty(H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        self.weight_ch = nn.Parameter(torch.empty(H, H))
        self.bias_ih, self.bias_hh, self.bias_ch = (nn.Parameter(torch.empty(H)) for _ in range(3))
        self._init_uniform(None)

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size,))

    def products(self):
        return self.weight_ih, (self.weight_hh, self.weight_ch)

    def pointwise(self, zx, zs, state):
        y, z = state
        act = torch.tanh(zx + self.bias_ih + zs[0] + self.bias_hh + zs[1] + self.bias_ch)
        z_new = z + self.dt * act - self.dt * self.gamma * y - self.dt * self.epsilon * z
        return (y + self.dt * z_new, z_new)


class UnICORNN(UserCell):
    r"""Undamped independent controlled oscillatory RNN (Rusch & Mishra 2021): per-unit oscillators,
    each with its own time step, and no recurrent matrix.

    .. math::  \delta = \Delta t\,\sigma(c),\qquad
               z_t = z_{t-1} - \delta \odot (\tanh(W x_t + b_{ih} + w \odot y_{t-1} + b_{hh}) + \alpha y_{t-1}),
               \qquad y_t = y_{t-1} + \delta \odot z_t

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (w, H), ``weight_ch`` (c, H), ``bias_ih`` and ``bias_hh``
    (H). State: ``(y, z)``; the output is y.
    """

    def __init__(self, input_size: int, hidden_size: int, *, dt: float = 0.1, alpha: float = 0.0):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.dt, self.alpha = float(dt), float(alpha)
        self.weight_ih = nn.Parameter(torch.empty(H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(H))
        self.weight_ch = nn.Parameter(torch.empty(H))
        self.bias_ih, self.bias_hh = nn.Parameter(torch.empty(H)), nn.Parameter(torch.empty(H))
        self._init_uniform(None)

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size,))

    def products(self):
        return self.weight_ih, (None, None)

    def pointwise(self, zx, zs, state):
        y, z = state
        step = self.dt * torch.sigmoid(self.weight_ch)
        z_new = z - step * (torch.tanh(zx + self.bias_ih + y * self.weight_hh + self.bias_hh) + self.alpha * y)
        return (y + step * z_new, z_new)


class BR(_Zoo):
    r"""Bistable recurrent cell (Vecoven et al. 2021): per-unit feedback only.

    .. math::  a = 1 + \tanh(W_a x_t + b_a + w_a \odot h_{t-1}),\qquad c = \sigma(W_c x_t + b_c + w_c \odot
               h_{t-1}),\qquad h_t = c \odot h_{t-1} + (1 - c) \odot \tanh(W_h x_t + b_h + a \odot h_{t-1})

    Parameters: ``weight_ih`` (3H, I) in the order a, c, h; ``bias_ih`` (3H); ``weight_hh`` and
    ``bias_hh`` (2H) in the order a, c. State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, ih=3, hh=None, hh_vector=2)
        self._init_uniform(None)

    def _feedback(self, zs, h):
        return tuple(w * h for w in self.weight_hh.chunk(2))

    def pointwise(self, zx, zs, state):
        h = state[0]
        x1, x2, x3 = (zx + self.bias_ih).chunk(3, -1)
        r1, r2 = self._feedback(zs, h)
        b1, b2 = self.bias_hh.chunk(2)
        a = 1.0 + torch.tanh(x1 + r1 + b1)
        c = torch.sigmoid(x2 + r2 + b2)
        return (c * h + (1.0 - c) * torch.tanh(x3 + a * h),)


class NBR(BR):
    r"""Neuromodulated bistable recurrent cell (Vecoven et al. 2021): BR with full recurrent matrices
    for a and c.

    .. math::  a = 1 + \tanh(W_a x_t + U_a h_{t-1} + b_a),\qquad c = \sigma(W_c x_t + U_c h_{t-1} + b_c),
               \qquad h_t = c \odot h_{t-1} + (1 - c) \odot \tanh(W_h x_t + b_h + a \odot h_{t-1})

    Parameters: ``weight_ih`` (3H, I) in the order a, c, h; ``bias_ih`` (3H); ``weight_hh`` (2H, H) and
    ``bias_hh`` (2H) in the order a, c. State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        _Zoo.__init__(self, input_size, hidden_size, ih=3, hh=2)
        self._init_uniform(None)

    def _feedback(self, zs, h):
        return zs[0].chunk(2, -1)


class FastRNN(_Zoo):
    r"""FastRNN (Kusupati et al. 2018): a residual update with two learned scalars.

    .. math::  h_t = \sigma(\alpha)\,\phi(W x_t + U h_{t-1} + b) + \sigma(\beta)\, h_{t-1}

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` and ``bias_hh`` (H), ``alpha`` and
    ``beta`` (1). State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh", alpha: float = 3.0,
                 beta: float = -3.0):
        super().__init__(input_size, hidden_size)
        self.nonlinearity = self._activation("nonlinearity", nonlinearity)
        self.alpha, self.beta = nn.Parameter(torch.empty(1)), nn.Parameter(torch.empty(1))
        self._init_uniform(None)
        with torch.no_grad():
            self.alpha.fill_(alpha)
            self.beta.fill_(beta)

    def pointwise(self, zx, zs, state):
        candidate = _ACTIVATIONS[self.nonlinearity](zx + self.bias_ih + zs[0] + self.bias_hh)
        return (torch.sigmoid(self.alpha) * candidate + torch.sigmoid(self.beta) * state[0],)


class FastGRNN(_Zoo):
    r"""FastGRNN (Kusupati et al. 2018): gate and candidate share W and U and differ in their biases.

    .. math::  z = \phi(W x_t + U h_{t-1} + b_z),\qquad \tilde h = \tanh(W x_t + U h_{t-1} + b_h),\qquad
               h_t = (\sigma(\zeta)(1 - z) + \sigma(\nu)) \odot \tilde h + z \odot h_{t-1}

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` and ``bias_hh`` (2H, in the order z,
    h), ``zeta`` and ``nu`` (1); φ is the logistic function by default (torchrecurrent's default is tanh).
    State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "sigmoid", zeta: float = 3.0,
                 nu: float = -3.0):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.nonlinearity = self._activation("nonlinearity", nonlinearity)
        self.bias_ih, self.bias_hh = nn.Parameter(torch.empty(2 * H)), nn.Parameter(torch.empty(2 * H))
        self.zeta, self.nu = nn.Parameter(torch.empty(1)), nn.Parameter(torch.empty(1))
        self._init_uniform(None)
        with torch.no_grad():
            self.zeta.fill_(zeta)
            self.nu.fill_(nu)

    def pointwise(self, zx, zs, state):
        partial = zx + zs[0]
        bi1, bi2 = self.bias_ih.chunk(2)
        bh1, bh2 = self.bias_hh.chunk(2)
        gate = _ACTIVATIONS[self.nonlinearity](partial + bi1 + bh1)
        candidate = torch.tanh(partial + bi2 + bh2)
        return ((torch.sigmoid(self.zeta) * (1.0 - gate) + torch.sigmoid(self.nu)) * candidate + gate * state[0],)


class STAR(_Zoo):
    r"""Stackable recurrent cell (Turkoglu et al. 2021): one gate.

    .. math::  k = \sigma(W_k x_t + b_k + U h_{t-1} + b_{hh}),\qquad
               h_t = \tanh((1 - k) \odot h_{t-1} + k \odot \tanh(W_z x_t + b_z))

    Parameters: ``weight_ih`` (2H, I) and ``bias_ih`` (2H) in the order z, k; ``weight_hh`` (H, H),
    ``bias_hh`` (H). State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, ih=2)
        self._init_uniform(None)

    def pointwise(self, zx, zs, state):
        x1, x2 = (zx + self.bias_ih).chunk(2, -1)
        k = torch.sigmoid(x2 + zs[0] + self.bias_hh)
        return (torch.tanh((1.0 - k) * state[0] + k * torch.tanh(x1)),)


class CFN(_Zoo):
    r"""Chaos-free network (Laurent & von Brecht 2017).

    .. math::  \theta = \sigma(W_\theta x_t + U_\theta h_{t-1} + b_\theta),\qquad
               \eta = \sigma(W_\eta x_t + U_\eta h_{t-1} + b_\eta),\qquad
               h_t = \theta \odot \tanh(h_{t-1}) + \eta \odot \tanh(W x_t + b)

    Parameters: ``weight_ih`` (3H, I) and ``bias_ih`` (3H) in the order θ, η, x; ``weight_hh`` (2H, H) and
    ``bias_hh`` (2H) in the order θ, η. State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, ih=3, hh=2)
        self._init_uniform(None)

    def pointwise(self, zx, zs, state):
        x1, x2, x3 = (zx + self.bias_ih).chunk(3, -1)
        r1, r2 = (zs[0] + self.bias_hh).chunk(2, -1)
        return (torch.sigmoid(x1 + r1) * torch.tanh(state[0]) + torch.sigmoid(x2 + r2) * torch.tanh(x3),)


class AntisymmetricRNN(_Zoo):
    r"""Antisymmetric RNN (Chang et al. 2019): a recurrent matrix computed from ``weight_hh``, whose
    gradient flows back through it.

    .. math::  h_t = h_{t-1} + \epsilon\, \phi(W x_t + (V - V^\top - \gamma I) h_{t-1} + b)

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (V, H×H), ``bias_ih`` and ``bias_hh`` (H). State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh", epsilon: float = 1.0,
                 gamma: float = 0.0):
        super().__init__(input_size, hidden_size)
        self.nonlinearity = self._activation("nonlinearity", nonlinearity)
        self.epsilon, self.gamma = float(epsilon), float(gamma)
        self._init_uniform(None)

    def products(self):
        w = self.weight_hh
        return self.weight_ih, (w - w.t() - self.gamma * torch.eye(len(w), dtype=w.dtype, device=w.device),)

    def pointwise(self, zx, zs, state):
        act = _ACTIVATIONS[self.nonlinearity]
        return (state[0] + self.epsilon * act(zx + self.bias_ih + zs[0] + self.bias_hh),)


class GatedAntisymmetricRNN(AntisymmetricRNN):
    r"""The gated antisymmetric RNN (Chang et al. 2019): an input gate on the update.

    .. math::  A = V - V^\top - \gamma I,\qquad g = \sigma(W_g x_t + b_g + A h_{t-1}),\qquad
               h_t = h_{t-1} + \epsilon\, g \odot \tanh(W_h x_t + b_h + A h_{t-1} + b_{hh})

    Parameters: ``weight_ih`` (2H, I) and ``bias_ih`` (2H) in the order g, h; ``weight_hh`` (V, H×H),
    ``bias_hh`` (H). State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, epsilon: float = 1.0, gamma: float = 0.0):
        _Zoo.__init__(self, input_size, hidden_size, ih=2)
        self.nonlinearity = "tanh"
        self.epsilon, self.gamma = float(epsilon), float(gamma)
        self._init_uniform(None)

    def pointwise(self, zx, zs, state):
        x1, x2 = (zx + self.bias_ih).chunk(2, -1)
        gate = torch.sigmoid(x1 + zs[0])
        return (state[0] + self.epsilon * gate * torch.tanh(x2 + zs[0] + self.bias_hh),)


class UGRNN(_Zoo):
    r"""Update-gate RNN (Collins et al. 2017): one gate.

    .. math::  [c, g] = W x_t + b_{ih} + U h_{t-1} + b_{hh},\qquad
               h_t = \sigma(g) \odot h_{t-1} + (1 - \sigma(g)) \odot \tanh(c)

    Parameters: ``weight_ih`` (2H, I), ``weight_hh`` (2H, H), ``bias_ih`` and ``bias_hh`` (2H), in the
    order c, g. State: ``(h,)``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, ih=2, hh=2)
        self._init_uniform(None)

    def pointwise(self, zx, zs, state):
        c, g = (zx + self.bias_ih + zs[0] + self.bias_hh).chunk(2, -1)
        gate = torch.sigmoid(g)
        return (gate * state[0] + (1.0 - gate) * torch.tanh(c),)


def _registered(name: str, cls: type) -> None:
    def build(input_size: int, hidden_size: int, **options) -> UserCell:
        return cls(input_size, hidden_size, **options)
    build.__doc__ = " ".join(cls.__doc__.split("\n\n")[0].split())
    register(name)(build)


for _name, _cls in {"indrnn": IndRNN, "janet": JANET, "ligru": LiGRU, "cornn": CoRNN, "unicornn": UnICORNN,
                    "br": BR, "nbr": NBR, "fastrnn": FastRNN, "fastgrnn": FastGRNN, "star": STAR, "cfn": CFN,
                    "antisymmetric_rnn": AntisymmetricRNN, "gated_antisymmetric_rnn": GatedAntisymmetricRNN,
                    "ugrnn": UGRNN}.items():
    _registered(_name, _cls)
