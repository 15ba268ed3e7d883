"""``fractional(sde, noise)``: drive an SDE by Markov-approximate fBM, as a larger Markov SDE.

The returned SDE has state ``(x, Y)`` with ``Y`` the OU processes of a :class:`MarkovFBM`, one
set of ``K`` per Brownian channel of ``sde``, and is driven by ordinary Brownian motion, so it
goes to :func:`neuralsde.solve` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from neuralsde.core.sde import f_and_g, g_prod
from neuralsde.noise.markov_fbm import MarkovFBM


class FractionalSDE(nn.Module):
    """``dx = b dt + s sum_k omega_k dY_k``, ``dY_k = (-gamma_k Y_k + u) dt + dW``.

    State ``y = [x (D), Y (M*K), kl (1, only with kl=True)]`` where ``M`` is the number of
    Brownian channels of the wrapped SDE (``D`` for diagonal, 1 for scalar). Substituting
    ``dY`` gives drift ``b + s sum_k omega_k (-gamma_k Y_k + u)`` and diffusion
    ``s sum_k omega_k`` for ``x``; each ``Y_{m, .}`` block has diffusion ``e_m``. The optional
    control ``u(t, x, Y) -> (batch, M)`` shifts the Brownian drift (a variational posterior);
    ``kl=True`` appends a channel integrating ``0.5 |u|^2``, the path KL to the uncontrolled SDE.

    Noise type: ``"scalar"`` when the wrapped SDE has scalar noise, else ``"general"``.
    """

    def __init__(self, sde, noise: MarkovFBM, brownian_size=None, control=None, kl=False,
                 omega=None):  # fmt: skip
        super().__init__()
        self.sde, self.noise, self.control, self.kl = sde, noise, control, bool(kl)
        self.fixed_omega = omega
        self.base_noise_type = sde.noise_type
        self.sde_type = sde.sde_type
        self.noise_type = "scalar" if sde.noise_type == "scalar" else "general"
        self.brownian_size = 1 if sde.noise_type == "scalar" else brownian_size
        self.K = noise.K

    def _sizes(self, y: torch.Tensor) -> tuple[int, int]:
        width = y.shape[-1] - int(self.kl)
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
        """``y -> (x: (batch, D), Y: (batch, M, K))``."""
        d, m = self._sizes(y)
        return y[..., :d], y[..., d : d + m * self.K].unflatten(-1, (m, self.K))

    def augment(self, x0: torch.Tensor, generator=None) -> torch.Tensor:
        """Initial augmented state from ``x0: (batch, D)``: appends ``Y(0)`` (and ``kl = 0``)."""
        b, d = x0.shape
        m = d if self.base_noise_type == "diagonal" else self.brownian_size
        if m is None:
            raise ValueError(
                f"brownian_size is required for noise_type={self.base_noise_type!r}; got None"
            )
        Y0 = self.noise.initial_state(b, m, generator, x0.dtype).to(x0.device)
        parts = [x0, Y0.flatten(1)]
        if self.kl:
            parts.append(x0.new_zeros(b, 1))
        return torch.cat(parts, dim=-1)

    def _omega(self, y):
        w = self.noise.omega() if self.fixed_omega is None else self.fixed_omega
        return w.to(y.dtype), self.noise.gammas().to(y.dtype)

    def f_and_g(self, t, y):
        x, Y = self.split(y)
        b, s = f_and_g(self.sde, t, x)
        w, gam = self._omega(y)
        dY = -gam * Y
        u = None
        if self.control is not None:
            u = self.control(t, x, Y)
            dY = dY + u.unsqueeze(-1)
        fx = b + g_prod(self.base_noise_type, s, (dY * w).sum(-1))
        parts = [fx, dY.flatten(1)]
        if self.kl:
            parts.append(0.5 * (u**2).sum(-1, keepdim=True) if u is not None else x[:, :1] * 0)
        drift = torch.cat(parts, dim=-1)
        return drift, self._g(s, w, y, x, Y)

    def _g(self, s, w, y, x, Y):
        batch, m, K = Y.shape
        wsum = w.sum()
        if self.base_noise_type == "diagonal":
            gx = torch.diag_embed(s * wsum)
        else:
            gx = s * wsum
        eye = torch.eye(m, dtype=y.dtype, device=y.device).repeat_interleave(K, dim=0)
        gY = eye.expand(batch, m * K, m)
        rows = [gx, gY]
        if self.kl:
            rows.append(y.new_zeros(batch, 1, m))
        return torch.cat(rows, dim=1)

    def f(self, t, y):
        return self.f_and_g(t, y)[0]

    def g(self, t, y):
        x, Y = self.split(y)
        s = self.sde.g(t, x)
        w, _ = self._omega(y)
        return self._g(s, w, y, x, Y)


def fractional(
    sde, noise: MarkovFBM, *, brownian_size=None, control=None, kl=False, dt=None, omega=None
):
    """Wrap ``sde`` so that it is driven by the Markov-approximate fBM ``noise``.

    Args:
        sde: an SDE (torchsde protocol) with any noise type.
        noise: a :class:`MarkovFBM`.
        brownian_size: number of Brownian channels of ``sde``; needed for additive/general noise.
        control: optional ``u(t, x, Y) -> (batch, M)`` added to the drift of every ``dY_k``.
        kl: append a channel accumulating ``0.5 |u|^2`` (the path KL of the control).
        dt: optional solver step; checked against ``gamma_max * dt < 0.5``.
        omega: optional precomputed ``noise.omega()`` (``(K,)``), reused at every step. Saves
            recomputing it when backpropagating through the steps; leave ``None`` with an
            adjoint, which needs ``omega`` computed from the parameters inside ``f`` and ``g``.

    Returns:
        :class:`FractionalSDE`; build its initial state with ``.augment(x0)`` and read ``x`` back
        with ``.split(ys)[0]``.

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
    if sde.noise_type in ("additive", "general") and brownian_size is None:
        raise ValueError(f"brownian_size is required for noise_type={sde.noise_type!r}; got None")
    if dt is not None:
        noise.check_step(dt)
    return FractionalSDE(sde, noise, brownian_size=brownian_size, control=control, kl=kl,
                         omega=omega)  # fmt: skip
