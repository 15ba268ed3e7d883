"""The flow view: stochastic interpolants and flow matching on the one SDE core (Albergo,
Boffi & Vanden-Eijnden, "Stochastic interpolants: a unifying framework for flows and
diffusions"; Lipman et al., "Flow matching").

An interpolant joins noise ``x_0 ~ N(0, I)`` at ``t = 0`` to data ``x_1`` at ``t = 1``:

    x_t = alpha(t) x_1 + sigma(t) x_0,   linear: (t, 1 - t),   trig: (sin(pi t/2), cos(pi t/2)).

A network learns the velocity ``b(t, x) = E[alpha'(t) x_1 + sigma'(t) x_0 | x_t = x]`` by
regression, and a denoiser head the noise ``E[x_0 | x_t = x]``, hence the score
``s = -E[x_0 | x_t] / sigma(t)``. For any ``eps(t) >= 0`` the SDE

    dX = [b(t, X) + eps(t) s(t, X)] dt + sqrt(2 eps(t)) dW

has the marginals of ``x_t`` (its Fokker-Planck equation is the ODE's transport equation:
the added drift ``eps grad log rho`` and diffusion cancel); ``eps = 0`` is the probability-flow
ODE. :class:`InterpolantSDE` is that SDE as an object for :func:`neuralsde.solve`;
:func:`sample_flow` samples with it. Conversions between velocity, score, noise and data go
through :func:`neuralsde.diffusion.parametrisation.convert` (``"flow"``), with the
interpolant's ``alpha, sigma`` in the roles of the Gaussian marginal's.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from neuralsde.core import solve
from neuralsde.core.keyed import normal
from neuralsde.core.sde import SDE
from neuralsde.data.validation import as_float_tensor
from neuralsde.diffusion.arguments import check_shape, check_steps
from neuralsde.diffusion.parametrisation import convert

__all__ = ["FlowModel", "Interpolant", "InterpolantSDE", "sample_flow", "train_velocity"]

_HALF_PI = math.pi / 2


class Interpolant:
    """``x_t = alpha(t) x_1 + sigma(t) x_0`` on ``[0, 1]``, ``kind`` ``"linear"`` or
    ``"trig"``. Its ``alpha, sigma`` make it usable wherever a forward SDE's marginal
    coefficients are read (e.g. ``GaussianMixture.score(x, interpolant, t)`` is the exact
    score of ``x_t`` for mixture data).

    Example:
        >>> it = Interpolant("trig")
        >>> float(it.alpha(torch.tensor(1.0))), float(it.sigma(torch.tensor(0.0)))
        (1.0, 1.0)
    """

    KINDS = ("linear", "trig")

    def __init__(self, kind: str = "linear"):
        if kind not in self.KINDS:
            raise ValueError(f"interpolant must be one of {list(self.KINDS)}; got {kind!r}")
        self.kind = kind

    def alpha(self, t):
        t = torch.as_tensor(t)
        return t if self.kind == "linear" else torch.sin(_HALF_PI * t)

    def sigma(self, t):
        t = torch.as_tensor(t)
        return 1 - t if self.kind == "linear" else torch.cos(_HALF_PI * t)

    def dalpha(self, t):
        t = torch.as_tensor(t)
        return torch.ones_like(t) if self.kind == "linear" else _HALF_PI * torch.cos(_HALF_PI * t)

    def dsigma(self, t):
        t = torch.as_tensor(t)
        return -torch.ones_like(t) if self.kind == "linear" else -_HALF_PI * torch.sin(_HALF_PI * t)

    def coefficients(self, t, x):
        """``alpha, sigma, alpha', sigma'`` at ``t: (B,)``, shaped to broadcast with ``x``."""
        view = (-1,) + (1,) * (x.dim() - 1)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        return tuple(c(t).reshape(view) for c in (self.alpha, self.sigma, self.dalpha,
                                                   self.dsigma))  # fmt: skip

    def config(self) -> dict:
        return {"type": "Interpolant", "kind": self.kind}


class FlowModel(nn.Module):
    """A velocity network and a denoiser head (the noise ``E[x_0 | x_t]``) for one
    interpolant. ``velocity_net, noise_net: (x (B, *shape), t (B,)) -> (B, *shape)``."""

    def __init__(self, velocity_net: nn.Module, noise_net: nn.Module, interpolant: Interpolant,
                 gaussian_base: bool = True):  # fmt: skip
        super().__init__()
        self.velocity_net, self.noise_net, self.interpolant = velocity_net, noise_net, interpolant
        self.gaussian_base = gaussian_base  # the denoiser head gives the score only then
        self.shape = None  # the event shape, once trained

    def velocity(self, x, t):
        return self.velocity_net(x, _times(t, x))

    def noise(self, x, t):
        return self.noise_net(x, _times(t, x))

    def score(self, x, t):
        """``grad log p_t(x) = -E[x_0 | x_t] / sigma(t)``."""
        a, s, _, _ = self.interpolant.coefficients(_times(t, x), x)
        return convert(self.noise(x, t), x, a, s, "eps", "score")

    def data(self, x, t):
        """``E[x_1 | x_t = x]`` from the denoiser head."""
        a, s, _, _ = self.interpolant.coefficients(_times(t, x), x)
        return convert(self.noise(x, t), x, a, s, "eps", "x0")

    forward = velocity


def _times(t, x):
    return torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])


def train_velocity(data, interpolant="linear", velocity_net=None, noise_net=None, *,
                   base=None, epochs: int = 100, batch_size: int = 256, lr: float = 2e-3,
                   t_min: float = 1e-3, generator=None, verbose: bool = True):  # fmt: skip
    """Flow matching for a stochastic interpolant: regress ``velocity_net`` on
    ``alpha' x_1 + sigma' x_0`` and ``noise_net`` on ``x_0`` at ``x_t`` (``t ~ U[t_min,
    1 - t_min]``, ``x_0 ~ N(0, I)`` of the data's shape), on the shared training loop.

    Args:
        data: ``(n, *shape)`` samples (tensor or array).
        interpolant: ``"linear"``, ``"trig"`` or an :class:`Interpolant`.
        velocity_net, noise_net: networks ``(x, t) -> (B, *shape)`` (default: ``ScoreMLP``).
        base: optional ``(m, *shape)`` samples of another base distribution for ``x_0`` (drawn
            at random; the flow then transports it to the data; its denoiser head is no
            score, so such a model samples with ``eps = 0`` only).

    Returns:
        ``(FlowModel, history)``, the model in eval mode.

    Example:
        >>> import torch
        >>> model, hist = train_velocity(torch.randn(256, 2), epochs=2, batch_size=64,
        ...                              verbose=False)
        >>> model.velocity(torch.zeros(3, 2), torch.full((3,), 0.5)).shape
        torch.Size([3, 2])
    """
    from neuralsde.diffusion.nets import ScoreMLP
    from neuralsde.train import fit

    it = interpolant if isinstance(interpolant, Interpolant) else Interpolant(interpolant)
    data = as_float_tensor(data, "data", torch.get_default_dtype(), min_dim=2)
    shape = tuple(data.shape[1:])
    velocity_net = ScoreMLP(shape) if velocity_net is None else velocity_net
    noise_net = ScoreMLP(shape) if noise_net is None else noise_net
    data = data.to(next(velocity_net.parameters()).dtype)
    if base is not None:
        base = as_float_tensor(base, "base", data.dtype, min_dim=2)
        if tuple(base.shape[1:]) != shape:
            raise ValueError(
                f"base samples have shape {tuple(base.shape[1:])} and data samples {shape}: "
                f"an interpolant joins two points of one space (its endpoints x_0 and x_1)"
            )
    model = FlowModel(velocity_net, noise_net, it, gaussian_base=base is None)
    model.shape = shape
    gen = generator if generator is not None else torch.Generator().manual_seed(0)

    def draw_base(like):
        if base is None:
            return torch.randn(like.shape, generator=gen, dtype=like.dtype)
        return base[torch.randint(0, base.shape[0], (like.shape[0],), generator=gen)]

    def loss_fn(m, batch):
        x1 = batch
        t = t_min + (1 - 2 * t_min) * torch.rand(x1.shape[0], generator=gen, dtype=x1.dtype)
        x0 = draw_base(x1)
        a, s, da, ds = it.coefficients(t, x1)
        xt = a * x1 + s * x0
        v_err = m.velocity_net(xt, t) - (da * x1 + ds * x0)
        n_err = m.noise_net(xt, t) - x0
        return (v_err**2).mean() + (n_err**2).mean()

    history = fit(model, loss_fn, data, epochs=epochs, lr=lr, batch_size=batch_size,
                  patience=None, lr_schedule="cosine", verbose=verbose, generator=gen,
                  desc="flow matching")  # fmt: skip
    return model.eval(), history


class InterpolantSDE(SDE):
    """``dX = [b(t, X) + eps(t) s(t, X)] dt + sqrt(2 eps(t)) dW`` in the interpolant's time
    (``t`` from 0, noise, to 1, data), on flattened states ``(B, prod(shape))``.

    Args:
        velocity, score: ``(x (B, *shape), t (B,)) -> (B, *shape)``.
        eps: ``eps(t) >= 0``: a number or a callable of ``t`` (a tensor).
        shape: the event shape.
    """

    def __init__(self, velocity, score, eps, shape, sde_type: str = "ito"):
        # with eps = 0 there is no noise, and the Ito and Stratonovich forms coincide
        super().__init__(noise_type="diagonal", sde_type=sde_type)
        self.velocity, self.score, self.shape = velocity, score, tuple(shape)
        self.eps = eps

    def _eps(self, t, y):
        e = self.eps(t) if callable(self.eps) else self.eps
        return torch.as_tensor(e, dtype=y.dtype, device=y.device).reshape(-1, 1)

    def f(self, t, y):
        x = y.reshape(y.shape[0], *self.shape)
        tb = _times(t, y)
        drift = self.velocity(x, tb).reshape(y.shape[0], -1)
        e = self._eps(t, y)
        if bool((e != 0).any()):
            drift = drift + e * self.score(x, tb).reshape(y.shape[0], -1)
        return drift

    def g(self, t, y):
        return torch.sqrt(2 * self._eps(t, y).clamp(min=0)) * torch.ones_like(y)


def sample_flow(model, shape, eps=0.0, steps: int = 20, method: str | None = None,
                t_end: float = 1.0, generator=None, dtype=torch.float32, x_0=None):  # fmt: skip
    """Samples ``(batch, *event)`` of a :class:`FlowModel` (or any object with ``velocity``
    and ``score``) by solving :class:`InterpolantSDE` from ``x_0 ~ N(0, I)`` at ``t = 0`` to
    ``t_end`` in ``steps`` steps.

    ``x_0``: the starting points (default: ``N(0, I)`` draws; pass base samples for a flow
    trained from another ``base``). ``eps = 0`` (the default) solves the probability-flow ODE
    with Heun (2 evaluations per step); ``eps > 0`` Euler-Maruyama (1 evaluation of each
    field per step, none at ``t_end``, where the score may be singular).
    """
    steps = check_steps(steps)
    shape = check_shape(shape)
    event = getattr(model, "shape", None)
    if event is not None and tuple(shape[1:]) != tuple(event):
        raise ValueError(f"shape {shape} does not match the model's samples (batch, *{event})")
    if not callable(eps) and not (
        isinstance(eps, numbers.Real) and not isinstance(eps, bool) and eps >= 0
    ):
        raise ValueError(f"eps must be a number >= 0 or a callable eps(t); got {eps!r}")
    if not (isinstance(t_end, numbers.Real) and 0 < t_end <= 1):
        raise ValueError(f"t_end must lie in (0, 1]; got {t_end!r}")
    ode = not callable(eps) and float(eps) == 0.0
    if not ode and not getattr(model, "gaussian_base", True):
        raise ValueError("eps: this flow was trained from a non-Gaussian base, so its denoiser "
                         "head is no score; sample it with eps=0 (the ODE)")  # fmt: skip
    method = method or ("heun" if ode else "euler")
    x0 = normal(shape, generator, dtype=dtype) if x_0 is None else torch.as_tensor(x_0, dtype=dtype)
    if tuple(x0.shape) != shape:
        raise ValueError(f"x_0 must have shape {shape}; got {tuple(x0.shape)}")
    sde = InterpolantSDE(model.velocity, model.score, eps, shape[1:],
                         sde_type="stratonovich" if ode else "ito")  # fmt: skip
    ts = torch.tensor([0.0, float(t_end)], dtype=dtype)
    y = solve(sde, x0.reshape(shape[0], -1), ts, method=method, dt=float(t_end) / steps,
              generator=generator)  # fmt: skip
    return y[-1].reshape(shape)
