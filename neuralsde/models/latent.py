"""Latent neural SDE (Li et al. 2020) with Brownian or Markov-approximate fractional noise.

A GRU reads the observations backwards in time and gives a context and ``q(z0)``; the posterior
SDE (drift ``f(t, z, ctx)``) and the prior SDE (drift ``h(t, z)``) share a diagonal diffusion
``g``; a Gaussian decoder maps latents to observations. Training maximises the ELBO
``E log p(x | z) - KL(q(z0) || p(z0)) - KL(path)``, the path KL integrated as an extra channel.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from neuralsde.core import SDE, augment, controlled, logqp, solve, split
from neuralsde.core.keyed import normal, repeat_rows
from neuralsde.core.methods import METHODS, sde_type_of
from neuralsde.core.solve import ADJOINTS
from neuralsde.models.filtered import backward_filter, gaussian_draw, guided_chain, linearise
from neuralsde.noise import MarkovFBM, fractional

POSTERIORS = ("neural", "backward_filter")


class DiagonalDiffusion(nn.Module):
    """``g_i(z) = s_i (floor + sigmoid(MLP_i(z_i)))``: one small net per latent coordinate.

    Each ``g_i`` depends on ``z_i`` only (diagonal noise). The learned scale
    ``s_i = exp(log_scale_i)`` lets the noise grow past the sigmoid's bound of 1, which rough data
    (small Hurst index, large increments at short lags) need. ``z: (batch, D) -> (batch, D)``.
    """

    def __init__(self, dim: int, hidden: int = 16, floor: float = 1e-3):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(dim, hidden) / 2)
        self.b1 = nn.Parameter(torch.zeros(dim, hidden))
        self.w2 = nn.Parameter(torch.randn(dim, hidden) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.floor = floor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = nn.functional.softplus(z.unsqueeze(-1) * self.w1 + self.b1)
        return self.log_scale.exp() * (self.floor + torch.sigmoid((h * self.w2).sum(-1) + self.b2))


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


class _Observations(NamedTuple):
    """The posterior's per-call data (``args`` of its solve): every series' observation times
    and what the drift reads between them.

    ``times: (B, L)`` increasing per series (``inf`` padding); ``ctx: (L, B, context)`` the
    encoder context at each time; ``t_next: (B, L)``, ``x_next, m_next: (B, L, C)`` the next
    *observed* time at or after each index, its values (0 where missing) and mask;
    ``t_last: (B, 1)`` the last observed time; ``omega`` the fractional weights (or None).
    The drift at ``t in [times[i-1], times[i])`` reads index ``i``.
    """

    times: torch.Tensor
    ctx: torch.Tensor
    t_next: torch.Tensor
    x_next: torch.Tensor
    m_next: torch.Tensor
    t_last: torch.Tensor
    dt: float
    omega: torch.Tensor | None = None


class _Context(NamedTuple):
    """:class:`_Observations` tabulated on the solver's step grid (``precompute``): the values
    of step ``k`` are ``ctx[piece[k]]``, ... (each ``(B, ...)``). A piece is one distinct row of
    observation indices across the batch, so there are at most ``B L + 1`` of them whatever the
    number of steps (the reversible adjoint's memory stays flat), and a step's backward touches
    only its own piece. ``step_times``: the grid's times (its first series' column) in the
    solve's dtype, matched exactly against the time the stepper passes; off the grid the drift
    falls back to the exact lookup in ``obs``."""

    obs: _Observations
    step_times: np.ndarray
    piece: np.ndarray
    ctx: tuple
    t_next: tuple
    x_next: tuple
    m_next: tuple


def observations(times, values, ctx, dt, omega=None) -> _Observations:
    """Build the posterior's :class:`_Observations` from ``times: (B, L)`` (NaN padding),
    ``values: (B, L, C)`` (NaN = missing) and the encoder context ``ctx: (L, B, context)``."""
    B, L = times.shape
    observed = torch.isfinite(values).any(-1) & torch.isfinite(times)
    idx = torch.arange(L).expand(B, L)
    idx = torch.where(observed, idx, torch.full_like(idx, L))
    nxt = idx.flip(-1).cummin(-1).values.flip(-1).clamp(max=L - 1)  # (B, L)
    t = torch.where(torch.isfinite(times), times, torch.full_like(times, math.inf)).contiguous()
    t0 = times[torch.isfinite(times)].min() if bool(torch.isfinite(times).any()) else 0.0
    t_last = torch.where(observed, t, torch.full_like(t, -math.inf)).amax(-1, keepdim=True)
    t_last = torch.where(torch.isfinite(t_last), t_last, torch.full_like(t_last, float(t0)))
    gather = nxt.unsqueeze(-1).expand(-1, -1, values.shape[-1])
    m_next = torch.isfinite(values).gather(1, gather).to(ctx.dtype)
    x_next = torch.nan_to_num(values.gather(1, gather).to(ctx.dtype))
    t_next = t.gather(1, nxt)
    t_next = torch.where(torch.isfinite(t_next), t_next, t_last).to(ctx.dtype)  # padding
    return _Observations(t, ctx, t_next, x_next, m_next, t_last.to(ctx.dtype), float(dt), omega)


def _lookup(obs: _Observations, t: torch.Tensor):
    """Exact lookup at ``t`` (0-d or ``(B, 1)``): the index ``i`` of each series with
    ``times[i-1] <= t < times[i]`` and the values there."""
    B, L = obs.times.shape
    tq = t.to(obs.times.dtype).reshape(-1, 1).expand(B, 1).contiguous()
    i = torch.searchsorted(obs.times, tq, right=True).clamp(max=L - 1)  # (B, 1)
    ctx = obs.ctx.gather(0, i.T.unsqueeze(-1).expand(1, B, obs.ctx.shape[-1]))[0]
    C = obs.x_next.shape[-1]
    x_next = obs.x_next.gather(1, i.unsqueeze(-1).expand(B, 1, C))[:, 0]
    m_next = obs.m_next.gather(1, i.unsqueeze(-1).expand(B, 1, C))[:, 0]
    return ctx, obs.t_next.gather(1, i), x_next, m_next


def tabulate(obs: _Observations, grid) -> _Context | _Observations:
    """:class:`_Context` of ``obs`` on a step ``grid`` (``(n + 1,)`` or ``(n + 1, B)``
    float64), or ``obs`` itself when there is no grid."""
    if grid is None:
        return obs
    B, L = obs.times.shape
    g = grid.to(obs.times.dtype)
    g = g.unsqueeze(-1).expand(-1, B) if g.dim() == 1 else g  # (n + 1, B)
    i = torch.searchsorted(obs.times, g.T.contiguous(), right=True).clamp(max=L - 1)  # (B, n+1)
    new = torch.ones(i.shape[1], dtype=torch.bool)
    new[1:] = (i[:, 1:] != i[:, :-1]).any(0)
    piece = (new.cumsum(0) - 1).numpy()  # step -> piece
    i = i[:, new]  # (B, pieces): each distinct index row once
    ctx = obs.ctx.transpose(0, 1).gather(1, i.unsqueeze(-1).expand(-1, -1, obs.ctx.shape[-1]))
    C = obs.x_next.shape[-1]
    x_next = obs.x_next.gather(1, i.unsqueeze(-1).expand(-1, -1, C))
    m_next = obs.m_next.gather(1, i.unsqueeze(-1).expand(-1, -1, C))
    t_next = obs.t_next.gather(1, i).unsqueeze(-1)
    step_times = (grid[:, 0] if grid.dim() == 2 else grid).to(obs.times.dtype).numpy()
    return _Context(obs, step_times, piece, ctx.unbind(1), t_next.unbind(1), x_next.unbind(1),
                    m_next.unbind(1))  # fmt: skip


def context_at(args, t):
    """At time ``t``: ``ctx (B, context)``, ``tau (B, 1)``, ``active (B, 1)``,
    ``x_next, m_next (B, C)`` from :class:`_Context` (on the grid) or :class:`_Observations`."""
    if isinstance(args, _Context):
        obs = args.obs
        s = float(t.reshape(-1)[0])
        k = int(np.searchsorted(args.step_times, s))
        if k < len(args.step_times) and args.step_times[k] == s:
            p = args.piece[k]
            ctx, t_next = args.ctx[p], args.t_next[p]
            x_next, m_next = args.x_next[p], args.m_next[p]
        else:
            ctx, t_next, x_next, m_next = _lookup(obs, t)
    else:
        obs = args
        ctx, t_next, x_next, m_next = _lookup(obs, t)
    tt = t.to(ctx.dtype)
    tau = (t_next - tt.reshape(-1, 1)).clamp(min=0)
    active = (tt.reshape(-1, 1) < obs.t_last).to(ctx.dtype)
    return ctx, tau, active, x_next, m_next


class PriorSDE(SDE):
    """``dz = h(z) dt + g(z) dW``, diagonal noise (no explicit time: any time grid fits)."""

    noise_type = "diagonal"
    batched_time = True

    def __init__(self, h_net, g_net, sde_type):
        super().__init__(sde_type=sde_type)
        self.h_net, self.g_net = h_net, g_net

    def f(self, t, z):
        return self.h_net(z)

    def g(self, t, z):
        return self.g_net(z)


class PosteriorControl(nn.Module):
    """The posterior as a Brownian control of the prior: ``u(t, y, args, h, g)`` (see
    :func:`neuralsde.core.transforms.controlled`), zero after each series' last observation.

    Brownian noise: ``u = ((f_net(z, ctx, ...) - h) / g + guide)``, so the posterior drift is
    ``f_net + g guide``. Fractional noise (``frac``, the wrapped prior): ``u = f_net(z, Y, ctx,
    ...) + guide`` shifts the driving Brownian motion of the OU channels ``Y``. ``guide`` is
    :meth:`LatentSDE.guide` (only with ``bridge=True``). ``args``: :class:`_Observations`.
    """

    def __init__(self, model, frac=None):
        super().__init__()
        self.model, self.frac = model, frac

    def precompute(self, grid, args: _Observations):
        if self.frac is not None and args.omega is None:
            args = args._replace(omega=self.frac.noise.omega())
        return tabulate(args, grid)

    def forward(self, t, y, args, h, g):
        m = self.model
        ctx, tau, active, x_next, m_next = context_at(args, t)
        obs = args.obs if isinstance(args, _Context) else args
        if self.frac is None:
            z, Y, state = y, None, y
        else:
            z, Y = self.frac.split(y)
            state = torch.cat([z, Y.flatten(1)], -1)
        feats = [state, ctx]
        if m.use_bridge:
            feats += [tau, obs.dt / (tau + obs.dt)]
        u = m.f_net(torch.cat(feats, -1))
        if Y is None:
            s = g
            u = (u - h) / s
        if m.use_bridge and x_next.shape[-1]:
            s = m.g_net(z) if Y is not None else s
            omega = obs.omega
            if Y is not None and omega is None:
                omega = self.frac.noise.omega()
            u = u + m.guide(z, Y, tau, x_next, m_next, omega, s)
        return active * u


class LatentSDE(nn.Module):
    """Latent SDE for irregular, partly observed multichannel series.

    Args:
        data_dim: number of observed channels ``C``.
        latent_dim: latent state size ``D``.
        context_dim: size of the encoder context.
        hidden: width of the drift and encoder networks.
        noise: ``"brownian"`` or a :class:`~neuralsde.noise.MarkovFBM`. With fractional noise
            each latent coordinate is driven by its own approximate fBM (OU channels ``Y``); the
            posterior adds a control ``u(t, z, Y, ctx)`` to the OU drifts and the path KL is
            ``E int 0.5 |u|^2 dt``.
        obs_std: fixed decoder noise std, or ``None`` to learn one per channel.
        method: solver; default ``"reversible_heun"`` with ``adjoint="reversible"``, else
            ``"euler"``.
        adjoint: ``None``, ``"reversible"`` or ``"backsolve"``, passed to :func:`neuralsde.solve`.
        dt: solver step in model time units.
        snap: round observation times to the solver grid (``grid[0] + k dt``): no extra solver
            steps, but times move by up to ``dt / 2`` and two observations of one series within
            ``dt / 2`` merge (with a warning). ``False`` (default) keeps the exact times, each
            distinct time adding a step.
        bridge: steer the posterior towards each series' next observation: ``f_net`` also sees
            the time left ``tau`` (as ``[tau, dt / (tau + dt)]``), and a guided-proposal term
            (:meth:`guide`, the optimal control for the prior's noise alone) is added to it.
            ``False`` gives the plain posterior of Li et al. (2020), which sees only the
            piecewise-constant context.
        refine: with ``bridge``, extra solver points at ``t - dt / 2^j``, ``j = 1..refine``,
            before each observation time ``t`` (see :meth:`refined`): the posterior then pins
            observations whose noise is small against ``g sqrt(dt)`` (rough paths, e.g. a small
            Hurst index), at ``refine`` extra steps per observation time. Default 0.
        series_grids: solve every series on its own times (one grid per series, the default),
            so that a batch of ``B`` series with ``L`` irregular times takes about ``L + span /
            dt`` steps instead of the ``B L`` of the union of their times. ``False`` (or
            ``snap=True``) solves on the union grid.
        posterior: ``"neural"`` (default): the encoder's ``q(z0)`` and a learned control
            (``bridge``, ``refine`` apply). ``"backward_filter"``: backward filtering, forward
            guiding (:mod:`neuralsde.models.filtered`): a Gaussian filter of the prior
            linearised at ``p(z0)``'s mean runs back from the last observation, and each Euler
            increment (steps of ``dt`` on each series' exact times, Ito) is drawn from the
            prior's increment tilted by it; ``q(z0)`` is ``p(z0)`` tilted the same way. No
            posterior networks: exact, with a zero-variance ELBO, when the prior is linear with
            constant noise, so the prior's parameters (a learnable Hurst index included) follow
            the likelihood's gradient.

    Shapes: observation ``times: (B, L)`` (NaN padding), ``values: (B, L, C)`` (NaN = missing).

    Example:
        >>> model = LatentSDE(data_dim=2, latent_dim=3, context_dim=8, hidden=16, dt=0.05)
        >>> times = torch.linspace(0, 1, 6).expand(4, 6)
        >>> gen = torch.Generator().manual_seed(0)
        >>> out = model.elbo(times, torch.randn(4, 6, 2), generator=gen)
        >>> sorted(out)
        ['elbo', 'kl0', 'kl_path', 'loglik', 'loss', 'n_obs']
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int = 4,
        context_dim: int = 16,
        hidden: int = 64,
        noise="brownian",
        obs_std: float | None = None,
        method: str | None = None,
        adjoint: str | None = None,
        dt: float = 0.01,
        bridge: bool = True,
        snap: bool = False,
        refine: int = 0,
        series_grids: bool = True,
        posterior: str = "neural",
    ):
        super().__init__()
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}; got {posterior!r}")
        self.posterior_kind = posterior
        for name, v in (("data_dim", data_dim), ("latent_dim", latent_dim),
                        ("context_dim", context_dim), ("hidden", hidden)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not (noise == "brownian" or isinstance(noise, MarkovFBM)):
            raise TypeError(f"noise must be 'brownian' or a MarkovFBM; got {noise!r}")
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number; got {dt!r}")
        if isinstance(noise, MarkovFBM):
            noise.check_step(dt)
            if adjoint == "reversible" and noise.gamma_max * noise.T > 5:
                warnings.warn(
                    f"adjoint='reversible' with fractional noise: reversible Heun amplifies a "
                    f"parasitic mode of an OU channel with speed gamma by about exp(gamma T); "
                    f"gamma_max * T = {noise.gamma_max * noise.T:.3g} may blow up. Prefer "
                    f"adjoint=None or 'backsolve', or gamma_max * T <= 5.",
                    RuntimeWarning,
                )
        self.data_dim, self.latent_dim, self.context_dim = data_dim, latent_dim, context_dim
        self.adjoint = adjoint
        self.method = method or ("reversible_heun" if adjoint == "reversible" else "euler")
        self.sde_type = sde_type_of(self.method)
        self.dt = float(dt)
        self.snap = bool(snap)
        self.series_grids = bool(series_grids)
        if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
            raise ValueError(f"refine must be an int >= 0; got {refine!r}")
        self.refine = refine

        self.gru = nn.GRU(2 * data_dim + 1, hidden)
        self.ctx_out = nn.Linear(hidden, context_dim)
        self.qz0 = nn.Linear(context_dim, 2 * latent_dim)
        self.pz0_mean = nn.Parameter(torch.zeros(latent_dim))
        self.pz0_logstd = nn.Parameter(torch.zeros(latent_dim))
        # With fractional noise the control also reads the OU states Y (the noise's memory).
        n_state = latent_dim * (1 + (noise.K if isinstance(noise, MarkovFBM) else 0))
        # Log-gain of the posterior's guided term (see `guide`): 1 at start.
        self.bridge_gain = nn.Parameter(torch.zeros(latent_dim)) if bridge else None
        self.f_net = _mlp(n_state + context_dim + 2 * self.use_bridge, hidden, latent_dim)
        self.h_net = _mlp(latent_dim, hidden, latent_dim)
        self.g_net = DiagonalDiffusion(latent_dim)
        self.decoder = nn.Linear(latent_dim, data_dim)
        if obs_std is None:
            self.obs_logstd = nn.Parameter(torch.full((data_dim,), math.log(0.1)))
        else:
            if not obs_std > 0:
                raise ValueError(f"obs_std must be positive or None; got {obs_std!r}")
            self.register_buffer("obs_logstd", torch.full((data_dim,), math.log(obs_std)))
        self.noise = noise if isinstance(noise, MarkovFBM) else None
        self.prior_sde = PriorSDE(self.h_net, self.g_net, self.sde_type)

    # ----------------------------------------------------------------- properties
    @property
    def fractional(self) -> bool:
        return self.noise is not None

    @property
    def use_bridge(self) -> bool:
        """Whether the posterior is guided towards the next observation (``bridge=True``)."""
        return self.bridge_gain is not None

    @property
    def hurst(self) -> torch.Tensor | None:
        """The (possibly learnable) Hurst index, or ``None`` with Brownian noise."""
        return None if self.noise is None else self.noise.hurst

    @property
    def obs_std(self) -> torch.Tensor:
        return self.obs_logstd.exp()

    # ----------------------------------------------------------------- encoder
    def grid(self, times: torch.Tensor, snap: bool | None = None):
        """Union grid of the observation times ``(T,)`` and each observation's grid index.

        With ``snap`` (default :attr:`snap`) the times are rounded to the solver step grid
        ``grid[0] + k dt`` (error ``<= dt/2``), so that observations add no solver steps.
        """
        snap = self.snap if snap is None else snap
        finite = torch.isfinite(times)
        t0 = times[finite].min()
        t = torch.where(finite, times, t0)
        if snap:
            t = t0 + torch.round((t - t0) / self.dt) * self.dt
        grid, index = torch.unique(t, sorted=True, return_inverse=True)
        return grid, torch.where(finite, index, -1)

    def on_grid(self, times, values, snap: bool | None = None):
        """Values scattered on the union grid: ``grid (T,)``, ``(B, T, C)`` NaN where missing.

        Warns when snapping puts two observations of one series on the same grid time (only the
        later is kept).
        """
        grid, index = self.grid(times, snap)
        B, L, C = values.shape
        out = values.new_full((B, grid.numel(), C), float("nan"))
        b = torch.arange(B).unsqueeze(-1).expand(B, L)
        ok = index >= 0
        out[b[ok], index[ok]] = values[ok]
        kept = int(torch.isfinite(out).sum())
        seen = int(torch.isfinite(values).sum())
        if kept < seen:
            warnings.warn(
                f"snapping observation times to the dt={self.dt:g} grid merged {seen - kept} of "
                f"{seen} observed values into later ones at the same grid time; use snap=False "
                f"or a smaller dt to keep them",
                RuntimeWarning,
                stacklevel=3,
            )
        return grid, out

    def refined(self, ts: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """``ts`` plus solver points at ``t_i - dt / 2^j`` (``j = 1..refine``) before each
        observation time ``t_i``: the last step into an observation is ``dt / 2^refine``.

        An Euler step of length ``h`` adds noise of variance ``g^2 h`` that the posterior cannot
        steer away, so it can pin an observation only to about ``g sqrt(h)``; with steps of
        ``dt`` the ELBO then prefers a large observation noise. Returns ``ts`` itself when
        ``refine == 0`` or the posterior has no guide (``bridge=False``).
        """
        if not (self.use_bridge and self.refine):
            return ts
        back = self.dt * 2.0 ** -torch.arange(1, self.refine + 1, dtype=grid.dtype)
        pts = (grid[1:, None] - back).flatten()
        return torch.unique(torch.cat([ts, pts[pts > grid[0]]]))

    def encode(self, times: torch.Tensor, values: torch.Tensor):
        """GRU over each series' observations in reverse time. ``times: (B, L)`` (NaN
        padding), ``values: (B, L, C)`` -> ``ctx (L, B, context)``, ``q(z0)`` mean and log-std
        ``(B, D)`` each."""
        mask = torch.isfinite(values)
        filled = torch.where(mask, values, torch.zeros_like(values))
        t = torch.nan_to_num(times.to(values.dtype))
        gaps = torch.nan_to_num(torch.diff(times.to(values.dtype), dim=-1), nan=0.0).clamp(min=0)
        gaps = torch.cat([gaps, torch.zeros_like(t[:, :1])], -1)
        inp = torch.cat([filled, mask.to(values.dtype), gaps.unsqueeze(-1)], -1)
        out, _ = self.gru(inp.transpose(0, 1).flip(0))
        ctx = self.ctx_out(out).flip(0)
        mean, logstd = self.qz0(ctx[0]).chunk(2, dim=-1)
        return ctx, mean, logstd

    # ----------------------------------------------------------------- SDEs
    def posterior_sde(self):
        """The posterior SDE with its path-KL channel: ``logqp(controlled(prior, u), prior)``,
        ``prior`` being ``fractional(prior_sde, noise)`` with fractional noise. Its ``args`` are
        the :class:`_Observations` of a batch; ``augment``/``split`` build and read its state
        (``state``, ``ou`` with fractional noise, ``kl``)."""
        self.prior_sde.sde_type = self.sde_type
        prior = fractional(self.prior_sde, self.noise) if self.fractional else self.prior_sde
        control = PosteriorControl(self, prior if self.fractional else None)
        return logqp(controlled(prior, control), prior)

    def guide(self, z, Y, tau, x_next, m_next, omega=None, s=None):
        """Guided-proposal control towards the next observation: ``(batch, D)``.

        For the prior's noise alone (no drift; ``s = g(z)`` held fixed over ``tau``) and one
        upcoming observation ``x_next ~ N(W z(t + tau) + b, R)`` (``R = obs_std^2``, entries
        masked by ``m_next``), the optimal Brownian control is ``u = s c W^T (R + s^2 v W W^T)^-1
        (x_next - W z_hat - b)``. Here ``z_hat = z + s m`` is the predicted latent and ``c``,
        ``v`` are the effect of a unit control on, and the variance of, the noise increment over
        ``tau`` (a drift term ``tau h(z)`` in ``z_hat`` changed the ELBO by < 0.06 nats per
        observation on fOU data, so it is left out):

        - Brownian: ``m = 0``, ``c = 1``, ``v = tau`` (the Brownian bridge);
        - Markov fBM: :meth:`~neuralsde.noise.MarkovFBM.increment_moments` of the OU state ``Y``.

        The inverse is taken per latent coordinate (exact for one latent and one channel), and
        scaled by a learned gain ``exp(bridge_gain)`` (1 at start); ``f_net`` learns the rest.
        Shapes: ``z (B, D)``, ``Y (B, D, K)`` or ``None``, ``tau (B, 1)``,
        ``x_next, m_next (B, C)``; ``s``: ``g(z)`` if already computed.
        """
        s = self.g_net(z) if s is None else s
        if Y is None:
            z_hat, c, v = z, 1.0, tau
        else:
            m, c, v = self.noise.increment_moments(tau, Y, omega)
            z_hat = z + s * m
        prec = m_next / self.obs_std.to(z.dtype) ** 2
        W = self.decoder.weight
        a = (prec * (x_next - self.decode(z_hat))) @ W
        d = prec @ (W * W)
        return self.bridge_gain.exp() * s * c * a / (1 + s * s * v * d)

    def per_series(self, snap: bool | None = None) -> bool:
        """Whether posterior solves run on each series' own times (``series_grids``, exact
        times, and a method and adjoint that support one grid per series) rather than on the
        union of all series' times."""
        snap = self.snap if snap is None else snap
        adjoint = ADJOINTS.get(self.adjoint, ADJOINTS[None])
        method = METHODS.get(self.method)
        supported = method is not None and method.per_series and adjoint.per_series
        return self.series_grids and not snap and supported

    def posterior(self, times, values, out_times=None, n_samples=1, generator=None, snap=None,
                  start=None):  # fmt: skip
        """Sample the posterior latent paths.

        By default (:meth:`per_series`) every series is solved on its own time stamps (one grid
        per series, :func:`neuralsde.solve`), not on the union of all series' times.

        Args:
            times, values: observations ``(B, L)``, ``(B, L, C)``.
            out_times: ``(T',)`` times to return (default: each series' observation times).
                They may extend past the data; beyond each series' last observation the prior
                drift runs.
            n_samples: posterior samples per series.
            generator: a ``torch.Generator``, or a
                :class:`~neuralsde.core.keyed.KeyedGenerator` keyed by series (each series'
                samples then do not depend on the rest of the batch).
            start: the common start time of the per-series solves (default: the batch's
                first time; a chunk of a larger batch passes the batch's).

        Returns:
            dict with ``z: (T', n_samples * B, D)`` (sample-major), ``kl0: (n*B,)``,
            ``kl_path: (n*B,)``, and, for the likelihood of ``z`` without ``out_times``,
            ``values: (B, T', C)`` aligned with ``z`` and their ``times: (B, T')``. On the
            union grid (``series_grids=False`` or ``snap=True``) also ``grid`` and ``ts`` (the
            solve times).
        """
        if self.posterior_kind == "backward_filter":
            return self._filtered(times, values, out_times, int(n_samples), generator, start)
        B = times.shape[0]
        per_series = self.per_series(snap)
        if per_series:
            obs_t, obs_v = _compress(times, values)
        else:
            grid, obs_v = self.on_grid(times, values, snap)
            obs_t = grid.expand(B, -1)
        ctx, mean, logstd = self.encode(obs_t, obs_v)
        n = int(n_samples)
        obs = observations(obs_t.repeat(n, 1), obs_v.repeat(n, 1, 1), ctx.repeat(1, n, 1),
                           self.dt)  # fmt: skip
        mean_n, logstd_n = mean.repeat(n, 1), logstd.repeat(n, 1)
        generator = repeat_rows(generator, n)
        eps = normal(mean_n.shape, generator, dtype=mean.dtype)
        z0 = mean_n + logstd_n.exp() * eps
        sde = self.posterior_sde()
        out = {}
        if per_series:
            ts, at_obs, at_out = self._series_times(obs_t, obs_v, out_times, start)
            ys = self._solve(sde, augment(sde, z0, generator), ts.repeat(1, n), generator, obs)
            pos = at_obs if out_times is None else at_out
            parts = split(sde, ys)
            z = parts.state.gather(
                0, pos.repeat(1, n).unsqueeze(-1).expand(-1, -1, parts.state.shape[-1])
            )
        else:
            ts = grid if out_times is None else torch.unique(torch.cat([grid, out_times.to(grid)]))
            t_solve = self.refined(ts, grid)
            ys = self._solve(sde, augment(sde, z0, generator), t_solve, generator, obs)
            parts = split(sde, ys)
            z = parts.state
            if t_solve is not ts:
                z = z[torch.searchsorted(t_solve, ts)]
            if out_times is not None:
                z = z[torch.searchsorted(ts, out_times.to(ts))]
            out.update(grid=grid, ts=ts)
        kl0 = _kl_normal(mean_n, logstd_n, self.pz0_mean, self.pz0_logstd).sum(-1)
        out.update(z=z, kl0=kl0, kl_path=parts.kl[-1], values=obs_v, times=obs_t)
        return out

    def _filtered(self, times, values, out_times, n, generator, start):
        """:meth:`posterior` by backward filtering, forward guiding (``posterior=
        "backward_filter"``): Euler steps of at most ``dt`` on each series' exact times."""
        obs_t, obs_v = _compress(times, values)
        coarse = self._series_times(obs_t, obs_v, out_times, start)[0]
        ts = self._fine(coarse)
        finite = torch.isfinite(obs_t)
        at_obs = _positions(ts, torch.where(finite, obs_t, ts[0].unsqueeze(-1)))
        B, C, D = obs_t.shape[0], self.data_dim, self.latent_dim
        y = obs_v.new_full((ts.shape[0], B, C), float("nan"))
        b = torch.arange(B).expand(obs_t.shape[1], B)
        y[at_obs[finite.T], b[finite.T]] = obs_v.transpose(0, 1)[finite.T]
        self.prior_sde.sde_type = self.sde_type
        sde = fractional(self.prior_sde, self.noise) if self.fractional else self.prior_sde
        dtype = self.pz0_mean.dtype
        width = D * (1 + (self.noise.K if self.fractional else 0))
        ref = torch.cat([self.pz0_mean, self.pz0_mean.new_zeros(width - D)])
        aux = linearise(sde, ts[0, 0].to(dtype), ref)
        W = torch.cat([self.decoder.weight, self.decoder.weight.new_zeros(C, width - D)], -1)
        H, F = backward_filter(aux, ts, y.to(dtype), W, self.decoder.bias,
                               self.obs_std.to(dtype) ** 2)  # fmt: skip
        rows = torch.arange(B).repeat(n)  # sample-major draws share their series' filter
        generator = repeat_rows(generator, n)
        rest = augment(sde, self.pz0_mean.new_zeros(n * B, D), generator)[:, D:]
        # q(z0 | Y0) = p(z0) h_0(z0, Y0), normalised; Y0 from the prior.
        prec0 = torch.exp(-2 * self.pz0_logstd)
        H0, F0 = H[0][rows], F[0][rows]
        lam = torch.diag_embed(prec0.expand(n * B, D)) + H0[:, :D, :D]
        eta = prec0 * self.pz0_mean + F0[:, :D] - (H0[:, :D, D:] @ rest.unsqueeze(-1))[..., 0]
        L = torch.linalg.cholesky(lam)
        eps = normal((n * B, D), generator, dtype=dtype)
        z0 = gaussian_draw(L, eta.unsqueeze(-1), eps)[1]
        kl0 = (  # log q(z0) - log p(z0) at the draw (zero-variance when the guide is exact)
            torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) - 0.5 * (eps * eps).sum(-1)
            + 0.5 * (prec0 * (z0 - self.pz0_mean) ** 2).sum(-1) + self.pz0_logstd.sum()
        )  # fmt: skip
        states, kl_path = guided_chain(sde, torch.cat([z0, rest], -1), ts.repeat(1, n), H, F,
                                       generator, rows)  # fmt: skip
        pos = at_obs if out_times is None else _positions(ts, out_times.to(ts))
        idx = pos.repeat(1, n).unsqueeze(-1).expand(-1, -1, D)
        z = states[..., :D].gather(0, idx)
        return {"z": z, "kl0": kl0, "kl_path": kl_path, "values": obs_v, "times": obs_t}

    def _fine(self, ts: torch.Tensor) -> torch.Tensor:
        """Per-series times ``(T, B)`` with points added so that no step exceeds ``dt``."""
        rows = []
        for col in ts.T:
            n_in = torch.ceil(torch.diff(col) / self.dt).clamp(min=1).long()
            parts_ = [col[:1]]
            for i, (d, k) in enumerate(zip(torch.diff(col), n_in.tolist(), strict=True)):
                parts_ += [col[i] + d * torch.arange(1, k, dtype=col.dtype) / k, col[i + 1 : i + 2]]
            rows.append(torch.cat(parts_))
        T = max(r.numel() for r in rows)
        return torch.stack([_pad(r, T, 1e-3 * self.dt) for r in rows], 1)

    def _solve(self, sde, y0, ts, generator, obs):
        return solve(sde, y0, ts, method=self.method, dt=self.dt, adjoint=self.adjoint,
                     generator=generator, args=obs)  # fmt: skip

    def _series_times(self, obs_t, obs_v, out_times, start=None):
        """Each series' solve times: the common start, its own times, ``out_times`` and the
        refined points before its observed times, padded after the end by tiny steps to one
        length. Returns ``ts (T, B)`` and the positions in it of the series' times ``(L, B)``
        and of ``out_times`` ``(T', B)`` (or None)."""
        finite = torch.isfinite(obs_t)
        observed = finite & torch.isfinite(obs_v).any(-1)
        t0 = obs_t[finite].min() if start is None else torch.as_tensor(start).to(obs_t)
        rows = []
        for b in range(obs_t.shape[0]):
            parts_ = [t0.reshape(1), obs_t[b][finite[b]]]
            if out_times is not None:
                parts_.append(out_times.to(obs_t))
            t = torch.unique(torch.cat(parts_))
            rows.append(self.refined(t, torch.cat([t0.reshape(1), obs_t[b][observed[b]]])))
        T = max(2, max(r.numel() for r in rows))
        step = 1e-3 * self.dt  # padding: tiny steps past the end, whose outputs are not read
        ts = torch.stack([_pad(r, T, step) for r in rows], 1)
        at_obs = _positions(ts, torch.where(finite, obs_t, t0))
        at_out = None if out_times is None else _positions(ts, out_times.to(ts))
        return ts, at_obs, at_out

    def prior(self, ts, n_samples: int, generator=None):
        """Generative latent paths from ``p(z0)`` and the prior SDE: ``(len(ts), n, D)``."""
        eps = torch.randn(n_samples, self.latent_dim, generator=generator,
                          dtype=self.pz0_mean.dtype)  # fmt: skip
        z0 = self.pz0_mean + self.pz0_logstd.exp() * eps
        self.prior_sde.sde_type = self.sde_type
        sde = fractional(self.prior_sde, self.noise) if self.fractional else self.prior_sde
        ys = solve(sde, augment(sde, z0, generator), ts, method=self.method, dt=self.dt,
                   generator=generator)  # fmt: skip
        return split(sde, ys).state

    # ----------------------------------------------------------------- likelihood
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder mean ``(..., C)`` of ``p(x | z)``; its std is :attr:`obs_std`."""
        return self.decoder(z)

    def log_likelihood(self, z: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Masked Gaussian ``log p(x | z)`` summed over observed entries: ``(n*B,)``.

        ``z: (T, n*B, D)``, ``values: (B, T, C)`` with NaN where missing.
        """
        n = z.shape[1] // values.shape[0]
        x = values.transpose(0, 1).repeat(1, n, 1)
        mask = torch.isfinite(x)
        mu = self.decode(z)
        logstd = self.obs_logstd.to(mu.dtype)
        r = (torch.where(mask, x, mu) - mu) / logstd.exp()
        lp = -0.5 * r * r - logstd - 0.5 * math.log(2 * math.pi)
        return (lp * mask).sum((0, 2))

    def elbo(self, times, values, kl_weight: float = 1.0, n_samples: int = 1, generator=None):
        """ELBO per observed entry (and its parts), averaged over series and samples.

        ``elbo = (log p(x|z) - KL(q(z0)||p(z0)) - KL(path)) / n_obs``; ``loss = -(log p(x|z) -
        kl_weight (KL0 + KL_path)) / n_obs`` is what training minimises (KL annealing).
        """
        post = self.posterior(times, values, n_samples=n_samples, generator=generator)
        ll = self.log_likelihood(post["z"], post["values"])
        n_obs = torch.isfinite(values).sum().clamp(min=1) * n_samples
        ll, kl0, klp = ll.sum() / n_obs, post["kl0"].sum() / n_obs, post["kl_path"].sum() / n_obs
        return {
            "elbo": ll - kl0 - klp,
            "loss": -(ll - kl_weight * (kl0 + klp)),
            "loglik": ll,
            "kl0": kl0,
            "kl_path": klp,
            "n_obs": n_obs / n_samples,
        }


def _pad(t: torch.Tensor, length: int, step: float) -> torch.Tensor:
    """``t`` extended to ``length`` times by steps of ``step`` past its end (at least what
    the dtype resolves there, so that the padded times still increase)."""
    step = max(step, 64 * torch.finfo(t.dtype).eps * max(1.0, abs(float(t[-1]))))
    extra = t[-1] + step * torch.arange(1, length - t.numel() + 1, dtype=t.dtype)
    return torch.cat([t, extra])


def _positions(ts: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Positions of ``query`` (``(B, L)``, or ``(L,)`` for every series) in the per-series
    times ``ts: (T, B)``: ``(L, B)``."""
    q = query.expand(ts.shape[1], -1) if query.dim() == 1 else query
    return torch.searchsorted(ts.T.contiguous(), q.contiguous()).T


def _compress(times, values):
    """Each series' own time stamps (finite ones), left-aligned and NaN-padded: ``(B, L')``,
    ``(B, L', C)``. A time whose values are all missing stays: it is a time of that series."""
    keep = torch.isfinite(times)
    counts = keep.sum(-1)
    L = max(1, int(counts.max()))
    order = torch.argsort((~keep).to(torch.int8), dim=-1, stable=True)[:, :L]  # kept first
    t = times.gather(1, order)
    v = values.gather(1, order.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    pad = torch.arange(L).expand_as(t) >= counts.unsqueeze(-1)
    nan = torch.tensor(float("nan"), dtype=times.dtype)
    return torch.where(pad, nan, t), torch.where(pad.unsqueeze(-1), nan.to(values.dtype), v)


def _kl_normal(m1, logs1, m2, logs2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) elementwise."""
    return (
        logs2 - logs1 + (torch.exp(2 * logs1) + (m1 - m2) ** 2) / (2 * torch.exp(2 * logs2)) - 0.5
    )
