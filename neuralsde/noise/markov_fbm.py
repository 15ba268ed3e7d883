"""Markov-approximate fractional Brownian motion (Daems et al., ICLR 2024).

``B^H(t) ~ sum_k omega_k Y_k(t)`` with ``K`` Ornstein-Uhlenbeck processes
``dY_k = -gamma_k Y_k dt + dW`` driven by one Brownian motion ``W``. Type II approximates the
Riemann-Liouville process (``Y(0) = 0``); type I approximates Mandelbrot-van Ness fBM through
``sum_k omega_k (Y_k(t) - Y_k(0))`` with stationary ``Y(0) ~ N(0, S)``, ``S_ij = 1/(g_i + g_j)``.
Both processes are normalised by ``1 / Gamma(H + 1/2)`` (so ``H = 1/2`` gives Brownian motion).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import integrate, special
from torch import nn

from neuralsde.core.keyed import normal
from neuralsde.noise._gamma import exp_gammaincc, gammainc

KINDS = ("I", "II")


def _check_hurst(hurst, name: str = "hurst") -> float:
    if isinstance(hurst, torch.Tensor):
        if hurst.numel() != 1:
            raise ValueError(f"{name} must be a scalar; got a tensor of shape {tuple(hurst.shape)}")
        hurst = float(hurst.detach())
    if isinstance(hurst, bool) or not isinstance(hurst, (int, float, np.floating)):
        raise TypeError(f"{name} must be a float in (0, 1); got {type(hurst).__name__}")
    if not 0.0 < float(hurst) < 1.0:
        raise ValueError(f"{name} must lie strictly inside (0, 1); got {hurst}")
    return float(hurst)


MAX_CONDITION = 1e12  # of the Gram matrix A; beyond it omega = A^-1 b loses ~1e-4 in float64


def _speeds(K: int, gamma_max: float) -> torch.Tensor:
    """``gamma_k = r^(k - n)``, ``n = (K + 1)/2``, ``r = gamma_max^(2/(K - 1))``: ``(K,)``."""
    n = (K + 1) / 2.0
    r = gamma_max ** (2.0 / (K - 1))
    return r ** (torch.arange(1, K + 1, dtype=torch.float64) - n)


def _condition(A: torch.Tensor) -> float:
    eig = torch.linalg.eigvalsh(A)
    return float(eig[-1] / eig[0]) if float(eig[0]) > 0 else math.inf


class MarkovFBM(nn.Module):
    """Markov approximation of fBM by ``K`` OU processes on a geometric grid of speeds.

    ``gamma_k = r^(k - n)``, ``n = (K + 1)/2``, ``r = gamma_max^(2/(K - 1))``, so the speeds span
    ``[1/gamma_max, gamma_max]``. ``omega(H)`` minimises ``int_0^T E(B^H_t - sum_k omega_k
    Y_k)^2 dt`` in closed form (``A omega = b``, solved in float64); it is differentiable in
    ``H``. With ``learn_hurst=True``, ``H = sigmoid(raw_hurst)`` is a trainable parameter.

    Args:
        hurst: Hurst index in (0, 1).
        K: number of OU processes, at least 2.
        gamma_max: largest speed, > 1. A solver step ``dt`` must satisfy ``gamma_max dt < 0.5``.
        kind: ``"II"`` (Riemann-Liouville) or ``"I"`` (Mandelbrot-van Ness).
        learn_hurst: make the Hurst index trainable.
        T: horizon of the L2 optimisation defining ``omega``.

    Example:
        >>> fbm = MarkovFBM(hurst=0.7, K=5)
        >>> fbm.gammas().shape
        torch.Size([5])
        >>> gen = torch.Generator().manual_seed(0)
        >>> paths = fbm.sample(torch.linspace(0, 1, 11), batch=3, generator=gen)
        >>> paths.shape
        torch.Size([11, 3])
    """

    def __init__(
        self,
        hurst: float = 0.7,
        K: int = 5,
        gamma_max: float = 20.0,
        kind: str = "II",
        learn_hurst: bool = False,
        T: float = 1.0,
    ):
        super().__init__()
        hurst = _check_hurst(hurst)
        if isinstance(K, bool) or not isinstance(K, (int, np.integer)):
            raise TypeError(f"K must be an int >= 2; got {type(K).__name__}")
        if K < 2:
            raise ValueError(f"K must be >= 2 (number of OU processes); got K={K}")
        if not isinstance(gamma_max, (int, float)) or not gamma_max > 1.0:
            raise ValueError(f"gamma_max must be a number > 1; got {gamma_max!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        if not isinstance(T, (int, float)) or not T > 0:
            raise ValueError(f"T must be a positive number; got {T!r}")
        self.K, self.gamma_max, self.kind, self.T = int(K), float(gamma_max), kind, float(T)
        self.learn_hurst = bool(learn_hurst)
        raw = torch.tensor(math.log(hurst / (1.0 - hurst)), dtype=torch.float64)
        if self.learn_hurst:
            # The default dtype, so it mixes with other parameters (adjoints flatten them
            # together); omega is always computed in float64.
            self.raw_hurst = nn.Parameter(raw.to(torch.get_default_dtype()))
        else:
            self.register_buffer("raw_hurst", raw)
        self.register_buffer("_chol", self._gram_cholesky(), persistent=False)
        self._cache = None

    def _gram_cholesky(self) -> torch.Tensor:
        """Cholesky factor of the Gram matrix ``A``, refusing an ill-conditioned one: when
        the OU speeds lie too close together (large ``K`` for the span of ``gamma_max``), ``A``
        is numerically singular and ``omega = A^-1 b`` would carry large float64 errors.
        The choice is to refuse (naming the largest ``K`` that works) rather than to
        regularise, which would change the approximation without saying so."""
        A = self._A(self.gammas())
        chol, info = torch.linalg.cholesky_ex(A)
        cond = _condition(A)
        if int(info) == 0 and cond <= MAX_CONDITION:
            return chol
        ok = [k for k in range(2, self.K) if _condition(self._A(_speeds(k, self.gamma_max)))
              <= MAX_CONDITION]  # fmt: skip
        raise ValueError(
            f"K={self.K} with gamma_max={self.gamma_max:g} gives OU speeds too close together: "
            f"their Gram matrix has condition number {cond:.2g} (> {MAX_CONDITION:.0e}), so "
            f"the weights omega cannot be computed reliably in float64; use K <= "
            f"{max(ok) if ok else 2} for this gamma_max"
        )

    # ----------------------------------------------------------------- parameters
    @property
    def hurst(self) -> torch.Tensor:
        """The Hurst index ``sigmoid(raw_hurst)`` (0-d tensor)."""
        return torch.sigmoid(self.raw_hurst)

    def gammas(self) -> torch.Tensor:
        """The geometric grid of OU speeds ``gamma_k = r^(k - n)``: ``(K,)`` float64."""
        return _speeds(self.K, self.gamma_max)

    def _A(self, g: torch.Tensor) -> torch.Tensor:
        T = self.T
        gi, gj = g[:, None], g[None, :]
        s = gi + gj
        if self.kind == "II":
            return (T + torch.expm1(-s * T) / s) / s
        return (2 * T + torch.expm1(-gi * T) / gi + torch.expm1(-gj * T) / gj) / s

    def A(self) -> torch.Tensor:
        """Gram matrix ``A_ij = int_0^T Cov(Y_i(t), Y_j(t)) dt`` (increments for type I)."""
        return self._A(self.gammas())

    def b(self, hurst=None) -> torch.Tensor:
        """``b_k = int_0^T Cov(B^H_t, Y_k(t)) dt`` in closed form: ``(K,)`` float64.

        Type II: ``T g^-a P(a, gT) - a g^-(a+1) P(a+1, gT)`` with ``a = H + 1/2``. Type I:
        ``2T g^-a - T^a / (g Gamma(a+1)) + (e^-gT - e^gT Q(a, gT)) g^-(a+1)``.
        """
        H = self._hurst_tensor(hurst)
        g, T = self.gammas(), self.T
        a = H + 0.5
        gT = g * T
        if self.kind == "II":
            return T * g.pow(-a) * gammainc(a, gT) - a * g.pow(-(a + 1)) * gammainc(a + 1, gT)
        return (
            2 * T * g.pow(-a)
            - torch.exp(a * math.log(T) - torch.lgamma(a + 1)) / g
            + (torch.exp(-gT) - exp_gammaincc(a, gT)) * g.pow(-(a + 1))
        )

    def omega(self, hurst=None) -> torch.Tensor:
        """Optimal coefficients ``omega = A^-1 b(H)``: ``(K,)`` float64, differentiable in H.

        Example:
            >>> h = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            >>> MarkovFBM(K=5).omega(h).sum().backward()
            >>> h.grad.shape
            torch.Size([])
        """
        if hurst is not None:
            return self._solve(self.b(hurst))
        if self.raw_hurst.requires_grad and torch.is_grad_enabled():
            return self._solve(self.b())
        key = (self.raw_hurst._version, float(self.raw_hurst))
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self._solve(self.b()))
        return self._cache[1]

    def _solve(self, b: torch.Tensor) -> torch.Tensor:
        return torch.cholesky_solve(b.unsqueeze(-1), self._chol).squeeze(-1)

    def relative_error(self, hurst=None) -> torch.Tensor:
        """Relative L2 error ``1 - b.omega / c``, ``c = int_0^T E (B^H_t)^2 dt``."""
        H = self._hurst_tensor(hurst)
        b = self.b(H)
        w = self._solve(b)
        c = self.T ** (2 * H + 1) / (2 * H * (2 * H + 1) * torch.exp(2 * torch.lgamma(H + 0.5)))
        if self.kind == "I":
            c = _mvn_variance_t(H) * self.T ** (2 * H + 1) / (2 * H + 1)
        return 1.0 - (b * w).sum() / c

    def _hurst_tensor(self, hurst) -> torch.Tensor:
        if hurst is None:
            return self.hurst.to(torch.float64)
        if not isinstance(hurst, torch.Tensor):
            hurst = torch.tensor(_check_hurst(hurst), dtype=torch.float64)
        return hurst.to(torch.float64)

    def increment_moments(self, tau: torch.Tensor, Y: torch.Tensor | None = None, omega=None):
        """Moments of the approximate fBM's increment ``B(t + tau) - B(t)`` given ``Y(t)``.

        Returns ``(m, c, v)``: the conditional mean ``m = sum_k omega_k (e^{-gamma_k tau} - 1)
        Y_k`` (``(..., M)``, or ``None`` without ``Y``), the response ``c = sum_k omega_k
        e^{-gamma_k tau}`` to a unit shift of the driving Brownian motion at ``t``, and the
        conditional variance ``v = sum_jk omega_j omega_k (1 - e^{-(gamma_j + gamma_k) tau}) /
        (gamma_j + gamma_k)`` (``dv / dtau = c^2``). ``tau: (..., 1)``; ``Y: (..., M, K)``;
        ``omega`` defaults to :meth:`omega`.
        """
        w = (self.omega() if omega is None else omega).to(tau.dtype)
        gam = self.gammas().to(tau.dtype)
        e = torch.exp(-gam * tau)  # (..., K)
        gg = gam[:, None] + gam[None, :]
        v = (w[:, None] * w[None, :] / gg * -torch.expm1(-gg * tau.unsqueeze(-1))).sum((-2, -1))
        m = None if Y is None else (Y * (w * (e - 1)).unsqueeze(-2)).sum(-1)
        return m, (w * e).sum(-1, keepdim=True), v.unsqueeze(-1)

    def check_step(self, dt: float) -> None:
        """Raise ValueError unless a solver step resolves the fastest OU: ``gamma_max dt < 0.5``."""
        dt = float(dt)
        if not self.gamma_max * dt < 0.5:
            raise ValueError(
                f"dt too large for MarkovFBM: gamma_max * dt must be < 0.5; got gamma_max="
                f"{self.gamma_max}, dt={dt} (product {self.gamma_max * dt:.3g}). "
                f"Use dt < {0.5 / self.gamma_max:.3g} or a smaller gamma_max."
            )

    # ----------------------------------------------------------------- sampling
    def initial_state(self, batch: int, channels: int = 1, generator=None, dtype=torch.float32):
        """``Y(0)``: ``(batch, channels, K)``; zeros (type II) or ``N(0, S)`` (type I)."""
        if self.kind == "II":
            return torch.zeros(batch, channels, self.K, dtype=dtype)
        g = self.gammas()
        L = _psd_sqrt(1.0 / (g[:, None] + g[None, :]))
        z = normal((batch, channels, self.K), generator, dtype=torch.float64)
        return (z @ L.T).to(dtype)

    def sample(
        self, ts, batch: int, generator=None, dtype=torch.float32, return_state: bool = False
    ):
        """Exact draws of the approximating process on the grid ``ts`` (starting at ``ts[0]``).

        The OU vector is advanced with its exact Gaussian transition, so any grid is allowed.

        Args:
            ts: ``(L,)`` increasing times.
            batch: number of independent paths.
            generator: torch.Generator for reproducibility.
            return_state: also return ``Y``: ``(L, batch, K)``.

        Returns:
            ``(L, batch)`` paths of ``sum_k omega_k Y_k`` (type II) or of
            ``sum_k omega_k (Y_k - Y_k(ts[0]))`` (type I); ``(paths, Y)`` with ``return_state``.
        """
        ts = torch.as_tensor(ts, dtype=torch.float64)
        if ts.dim() != 1 or ts.numel() < 1:
            raise ValueError(f"ts must be a 1-d tensor of times; got shape {tuple(ts.shape)}")
        if ts.numel() > 1 and not bool((ts[1:] > ts[:-1]).all()):
            raise ValueError("ts must be strictly increasing")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int; got {batch!r}")
        g = self.gammas()
        with torch.no_grad():
            w = self.omega().detach()
        Y = self.initial_state(batch, 1, generator, torch.float64)[:, 0]
        Y0 = Y.clone()
        out = [Y]
        gij = g[:, None] + g[None, :]
        for dt in torch.diff(ts):
            cov = -torch.expm1(-gij * dt) / gij
            noise = torch.randn(batch, self.K, generator=generator, dtype=torch.float64)
            Y = torch.exp(-g * dt) * Y + noise @ _psd_sqrt(cov).T
            out.append(Y)
        Ys = torch.stack(out)
        paths = (Ys - Y0) @ w if self.kind == "I" else Ys @ w
        paths = paths.to(dtype)
        return (paths, Ys.to(dtype)) if return_state else paths

    # ----------------------------------------------------------------- covariances
    def cov(self, s, t) -> torch.Tensor:
        """Exact covariance ``Cov(B^_s, B^_t)`` of the approximating process: ``(len(s), len(t))``.

        Times are measured from the start of the process (``s, t >= 0``).
        """
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1)
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        g = self.gammas()
        w = self.omega().detach()
        gij = (g[:, None] + g[None, :])[None, None]

        def c(u, v):  # Cov(Y_i(u), Y_j(v)) for stationary Y: (len(u), len(v), K, K)
            d = v[None, :] - u[:, None]
            di, dj = d[..., None, None], d[..., None, None]
            lag = torch.where(di >= 0, torch.exp(-g[None, :] * dj), torch.exp(g[:, None] * di))
            return lag / gij

        if self.kind == "II":
            m = torch.minimum(s[:, None], t[None, :])[..., None, None]
            C = c(s, t) * (1 - torch.exp(-gij * m))
        else:
            z = torch.zeros(1, dtype=torch.float64)
            C = c(s, t) - c(z, t) - c(s, z) + c(z, z)
        return torch.einsum("i,stij,j->st", w, C, w)

    def target_cov(self, s, t) -> np.ndarray:
        """Covariance of the exact process approximated (RL for type II, MvN for type I)."""
        H = float(self.hurst)
        if self.kind == "II":
            return riemann_liouville_cov(s, t, H)
        return fbm_cov(s, t, H)


def _psd_sqrt(S: torch.Tensor) -> torch.Tensor:
    """A square root ``L`` with ``L L^T = S`` for a symmetric PSD (possibly singular) ``S``."""
    lam, V = torch.linalg.eigh(S)
    return V * lam.clamp_min(0).sqrt()


def _mvn_variance_t(H) -> torch.Tensor:
    """``Var(B^H_1) = 1 / (Gamma(2H+1) sin(pi H))`` for MvN fBM normalised by Gamma(H+1/2)."""
    return 1.0 / (torch.exp(torch.lgamma(2 * H + 1)) * torch.sin(math.pi * H))


def fbm_cov(s, t, hurst: float) -> np.ndarray:
    """MvN fBM covariance ``V_H/2 (s^2H + t^2H - |t-s|^2H)``, ``V_H = 1/(Gamma(2H+1) sin(pi H))``.

    This is the fBM ``Gamma(H+1/2)^-1 int [(t-u)_+^(H-1/2) - (-u)_+^(H-1/2)] dW_u``.
    """
    H = _check_hurst(hurst)
    s = np.asarray(s, dtype=float).reshape(-1)[:, None]
    t = np.asarray(t, dtype=float).reshape(-1)[None, :]
    v = 1.0 / (special.gamma(2 * H + 1) * np.sin(np.pi * H))
    return 0.5 * v * (s ** (2 * H) + t ** (2 * H) - np.abs(t - s) ** (2 * H))


def riemann_liouville_cov(s, t, hurst: float) -> np.ndarray:
    """Riemann-Liouville covariance ``Gamma(a)^-2 int_0^min(s,t) (s-u)^(a-1) (t-u)^(a-1) du``.

    ``a = H + 1/2``; computed by scipy quadrature with the algebraic endpoint weight.
    """
    H = _check_hurst(hurst)
    a = H + 0.5
    s = np.asarray(s, dtype=float).reshape(-1)
    t = np.asarray(t, dtype=float).reshape(-1)
    out = np.empty((s.size, t.size))
    for i, si in enumerate(s):
        for j, tj in enumerate(t):
            lo, hi = min(si, tj), max(si, tj)
            if lo <= 0:
                out[i, j] = 0.0
            elif hi == lo:
                out[i, j] = lo ** (2 * a - 1) / (2 * a - 1)
            else:
                out[i, j] = integrate.quad(
                    lambda u, hi=hi: (hi - u) ** (a - 1), 0, lo, weight="alg", wvar=(0, a - 1)
                )[0]
    return out / special.gamma(a) ** 2
