"""``fractional(sde, noise)``: drive an SDE by Markov-approximate fBM, as a larger Markov SDE.

The returned SDE has state ``(x, Y)`` with ``Y`` the OU processes of a :class:`MarkovFBM`, one
set of ``K`` per Brownian channel of ``sde``, and is driven by ordinary Brownian motion, so it
goes to :func:`neuralsde.solve` unchanged. A variational posterior is a Brownian control of it
(:func:`neuralsde.core.transforms.controlled`), and ``logqp`` integrates its path KL.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from neuralsde.core.sde import Terms, g_prod
from neuralsde.core.transforms import Controlled, parts
from neuralsde.noise.markov_fbm import MarkovFBM


class FractionalArgs(NamedTuple):
    """What :meth:`FractionalSDE.precompute` hands to every step: the wrapped SDE's ``args``
    and ``omega(H)``, computed once per solve."""

    inner: object
    omega: torch.Tensor


class FractionalSDE(nn.Module):
    """``dx = b dt + s sum_k omega_k dY_k``, ``dY_k = -gamma_k Y_k dt + dW``.

    State ``y = [x (D), Y (M*K)]`` where ``M`` is the number of Brownian channels of the wrapped
    SDE (``D`` for diagonal, 1 for scalar). Substituting ``dY`` gives drift
    ``b + s sum_k omega_k (-gamma_k Y_k)`` and diffusion ``s sum_k omega_k`` for ``x``; each
    ``Y_{m, .}`` block has diffusion ``e_m``. A control ``u`` of the driving Brownian motion
    (``controlled(fractional(sde), u)``) shifts the drift of every ``dY_k`` by ``u``, which is
    the variational posterior of Daems et al. (2024).

    Noise type: ``"scalar"`` when the wrapped SDE has scalar noise, else ``"general"``.
    ``omega(H)`` is computed once per solve (:meth:`precompute`), or fixed by ``omega``.
    """

    def __init__(self, sde, noise: MarkovFBM, brownian_size=None, omega=None):
        super().__init__()
        self.sde, self.noise = sde, noise
        self._base = Terms(sde)
        self.fixed_omega = omega
        self.base_noise_type = sde.noise_type
        self.sde_type = sde.sde_type
        self.noise_type = "scalar" if sde.noise_type == "scalar" else "general"
        self.brownian_size = 1 if sde.noise_type == "scalar" else brownian_size
        self.batched_time = bool(getattr(sde, "batched_time", False))
        self.K = noise.K

    def same_sde(self, other) -> bool:
        """Whether ``other`` is the same fractional SDE (same wrapped SDE and noise)."""
        return (
            isinstance(other, FractionalSDE)
            and other.sde is self.sde
            and other.noise is self.noise
            and other.brownian_size == self.brownian_size
            and other.fixed_omega is self.fixed_omega
        )

    def _sizes(self, y: torch.Tensor) -> tuple[int, int]:
        width = y.shape[-1]
        if self.base_noise_type == "diagonal":
            if width % (self.K + 1):
                raise ValueError(
                    f"augmented state width {width} is not a multiple of K + 1 = {self.K + 1}"
                )
            d = width // (self.K + 1)
            return d, d
        m = self.brownian_size
        return width - m * self.K, m

    def split(self, y: torch.Tensor):
        """Named parts ``(state: (..., D), ou: (..., M, K))``."""
        d, m = self._sizes(y)
        ou = y[..., d : d + m * self.K].unflatten(-1, (m, self.K))
        return parts(state=y[..., :d], ou=ou)

    def augment(self, x0: torch.Tensor, generator=None) -> torch.Tensor:
        """Initial augmented state from ``x0: (batch, D)``: appends ``Y(0)``."""
        b, d = x0.shape
        m = d if self.base_noise_type == "diagonal" else self.brownian_size
        if m is None:
            raise ValueError(
                f"brownian_size is required for noise_type={self.base_noise_type!r}; got None"
            )
        Y0 = self.noise.initial_state(b, m, generator, x0.dtype).to(x0.device)
        return torch.cat([x0, Y0.flatten(1)], dim=-1)

    def precompute(self, grid, args):
        """Compute ``omega(H)`` once for the solve (and run the wrapped SDE's hook)."""
        hook = getattr(self.sde, "precompute", None)
        inner = args if hook is None else hook(grid, args)
        return FractionalArgs(inner, self._omega_value())

    def _omega_value(self):
        return self.noise.omega() if self.fixed_omega is None else self.fixed_omega

    def _unpack(self, y, args):
        if isinstance(args, FractionalArgs):
            inner, w = args.inner, args.omega
        else:  # called outside solve: compute omega now
            inner, w = args, self._omega_value()
        return inner, w.to(y.dtype), self.noise.gammas().to(y.dtype)

    def f_and_g(self, t, y, args=None):
        x, Y = self.split(y)
        inner, w, gam = self._unpack(y, args)
        b, s = self._base.f_and_g(t, x, inner)
        dY = -gam * Y
        fx = b + g_prod(self.base_noise_type, s, (dY * w).sum(-1))
        return torch.cat([fx, dY.flatten(1)], dim=-1), self._g(s, w, y, Y)

    def _g(self, s, w, y, Y):
        batch, m, K = Y.shape
        wsum = w.sum()
        gx = torch.diag_embed(s * wsum) if self.base_noise_type == "diagonal" else s * wsum
        eye = torch.eye(m, dtype=y.dtype, device=y.device).repeat_interleave(K, dim=0)
        return torch.cat([gx, eye.expand(batch, m * K, m)], dim=1)

    def f(self, t, y, args=None):
        return self.f_and_g(t, y, args)[0]

    def g(self, t, y, args=None):
        x, Y = self.split(y)
        inner, w, _ = self._unpack(y, args)
        return self._g(self._base.g(t, x, inner), w, y, Y)


class _LiftedControl:
    """The control of ``controlled(sde, u)`` acting on ``fractional(sde)``: ``u`` reads the
    wrapped state ``x`` and the wrapped SDE's drift and diffusion there."""

    def __init__(self, fractional_sde: FractionalSDE, control):
        self.frac, self.control = fractional_sde, control
        self._base = fractional_sde._base
        if hasattr(control, "precompute"):
            self.precompute = control.precompute

    def __call__(self, t, y, args, f, g):
        x = self.frac.split(y).state
        inner = args.inner if isinstance(args, FractionalArgs) else args
        fx, gx = self._base.f_and_g(t, x, inner)
        return self.control(t, x, inner, fx, gx)


def fractional(sde, noise: MarkovFBM, *, brownian_size=None, dt=None, omega=None):
    """Wrap ``sde`` so that it is driven by the Markov-approximate fBM ``noise``.

    Args:
        sde: an SDE (the protocol of :func:`neuralsde.solve`) with any noise type. A
            ``controlled(prior, u)`` posterior becomes ``controlled(fractional(prior), u)``:
            its control then shifts the driving Brownian motion of the OU channels.
        noise: a :class:`MarkovFBM`.
        brownian_size: number of Brownian channels of ``sde``; needed for additive/general noise.
        dt: optional solver step; checked against ``gamma_max * dt < 0.5``.
        omega: optional fixed ``(K,)`` weights in place of ``noise.omega()``.

    Returns:
        :class:`FractionalSDE` (or a :class:`~neuralsde.core.transforms.Controlled` of one);
        build its initial state with ``.augment(x0)`` and read it back with ``.split(ys)``.

    Example:
        >>> import torch
        >>> from neuralsde.core.sde import SDE
        >>> class Drifted(SDE):
        ...     noise_type = "diagonal"
        ...     def f(self, t, y): return -y
        ...     def g(self, t, y): return torch.ones_like(y)
        >>> aug = fractional(Drifted(), MarkovFBM(hurst=0.7, K=5))
        >>> y0 = aug.augment(torch.zeros(3, 2))
        >>> y0.shape, aug.g(torch.tensor(0.0), y0).shape
        (torch.Size([3, 12]), torch.Size([3, 12, 2]))
    """
    if not isinstance(noise, MarkovFBM):
        raise TypeError(f"noise must be a MarkovFBM; got {type(noise).__name__}")
    for name in ("f", "g"):
        if not callable(getattr(sde, name, None)):
            raise TypeError(f"sde must have a callable `{name}(t, y)`; got {type(sde).__name__}")
    if dt is not None:
        noise.check_step(dt)
    if isinstance(sde, Controlled):
        frac = fractional(sde.prior, noise, brownian_size=brownian_size, omega=omega)
        return Controlled(frac, _LiftedControl(frac, sde.control))
    if sde.noise_type in ("additive", "general") and brownian_size is None:
        raise ValueError(f"brownian_size is required for noise_type={sde.noise_type!r}; got None")
    return FractionalSDE(sde, noise, brownian_size=brownian_size, omega=omega)


__all__ = ["FractionalArgs", "FractionalSDE", "fractional"]
