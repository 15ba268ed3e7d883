"""Forward noising SDEs of score-based diffusion (Song et al., ICLR 2021): VP, sub-VP and VE.

Each forward SDE ``dx = f(t) x dt + g(t) dW`` on ``t in [0, T]`` knows its own mathematics:
the Gaussian marginal ``x_t | x_0 ~ N(alpha(t) x_0, sigma(t)^2 I)``, its prior at ``T`` and
its reverse-time class, which ``neuralsde.reverse(sde, score)`` builds for ``neuralsde.solve``.
"""

from __future__ import annotations

import math

import torch

from neuralsde.core.keyed import normal
from neuralsde.core.sde import SDE
from neuralsde.diffusion.reverse import ReverseSDE


def _as_time(t, like: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` as a tensor: in ``like``'s dtype/device if given, else keeping a tensor's dtype."""
    if like is not None:
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if isinstance(t, torch.Tensor):
        return t
    return torch.as_tensor(t, dtype=torch.get_default_dtype())


class ForwardSDE(SDE):
    """Base class of linear forward SDEs ``dx = -0.5 b(t) x dt + g(t) dW`` (diagonal, Ito).

    Subclasses define ``alpha(t)`` (mean coefficient), ``sigma(t)`` (marginal std),
    ``drift_coef(t)`` (the ``k(t)`` of ``f = k(t) x``), ``diffusion(t)`` (``g(t)``) and
    ``prior_std``. ``t`` may be a float, a 0-d tensor or a ``(batch,)`` tensor.
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, T: float = 1.0, eps: float = 1e-3):
        super().__init__()
        if not T > 0:
            raise ValueError(f"T must be positive; got {T!r}")
        if not 0 <= eps < T:
            raise ValueError(f"eps must lie in [0, T={T}); got {eps!r}")
        self.T = float(T)
        self.eps = float(eps)

    # --- mathematics every subclass provides -------------------------------------------
    def alpha(self, t) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, t) -> torch.Tensor:
        raise NotImplementedError

    def drift_coef(self, t) -> torch.Tensor:
        raise NotImplementedError

    def diffusion(self, t) -> torch.Tensor:
        raise NotImplementedError

    prior_mean_coef: float = 0.0

    @property
    def prior_std(self) -> float:
        raise NotImplementedError

    # --- the torchsde protocol (forward time) ------------------------------------------
    def f(self, t, y):
        return self.drift_coef(_as_time(t, y)) * y

    def g(self, t, y):
        return self.diffusion(_as_time(t, y)) * torch.ones_like(y)

    # --- derived quantities ------------------------------------------------------------
    def marginal_prob(self, x0: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of ``x_t | x_0``. ``x0: (batch, *shape)``, ``t: (batch,)`` or scalar."""
        t = _as_time(t, x0)
        a, s = self.alpha(t), self.sigma(t)
        if a.dim() == 1:
            a = a.reshape(-1, *([1] * (x0.dim() - 1)))
            s = s.reshape(-1, *([1] * (x0.dim() - 1)))
        return a * x0, s * torch.ones_like(x0)

    def log_snr(self, t) -> torch.Tensor:
        """``lambda(t) = log(alpha(t) / sigma(t))``, decreasing in ``t``."""
        return torch.log(self.alpha(t)) - torch.log(self.sigma(t))

    def t_from_log_snr(self, lam) -> torch.Tensor:
        """Inverse of :meth:`log_snr`."""
        raise NotImplementedError

    def prior_sampling(
        self, shape, generator: torch.Generator | None = None, dtype=None, device=None
    ) -> torch.Tensor:
        """Draw ``x_T`` from the prior ``N(0, prior_std^2 I)``; ``shape = (batch, *event)``."""
        z = normal(tuple(shape), generator, dtype=dtype, device=device)
        return self.prior_std * z

    def prior_logp(self, z: torch.Tensor) -> torch.Tensor:
        """Log-density of the prior at ``z: (batch, *event)``, summed over the event -> (batch,)."""
        d = z[0].numel()
        s2 = self.prior_std**2
        sq = z.reshape(z.shape[0], -1).pow(2).sum(-1)
        return -0.5 * d * math.log(2 * math.pi * s2) - 0.5 * sq / s2

    # the reverse-time class that ``neuralsde.reverse(sde, score, ...)`` builds
    reverse_class = ReverseSDE

    def config(self) -> dict:
        """A JSON-able description used by checkpoints."""
        raise NotImplementedError


class VPSDE(ForwardSDE):
    """Variance-preserving SDE: ``dx = -0.5 beta(t) x dt + sqrt(beta(t)) dW``.

    ``beta(t) = b0 + t (b1 - b0)``; ``alpha(t) = exp(-t^2 (b1 - b0) / 4 - t b0 / 2)``,
    ``sigma(t)^2 = 1 - alpha(t)^2``; prior ``N(0, I)``.

    Example:
        >>> sde = VPSDE()
        >>> round(float(sde.alpha(1.0) ** 2 + sde.sigma(1.0) ** 2), 6)
        1.0
    """

    def __init__(
        self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0, eps: float = 1e-3
    ):
        super().__init__(T=T, eps=eps)
        if not 0 < beta_min < beta_max:
            raise ValueError(
                f"need 0 < beta_min < beta_max; got beta_min={beta_min!r}, beta_max={beta_max!r}"
            )
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, t):
        t = _as_time(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _log_alpha(self, t):
        t = _as_time(t)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t):
        return torch.exp(self._log_alpha(t))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(2 * self._log_alpha(t)))

    def drift_coef(self, t):
        return -0.5 * self.beta(t)

    def _t_from_log_alpha(self, log_alpha):
        # solve 0.25 (b1 - b0) t^2 + 0.5 b0 t = -log_alpha for t >= 0
        c, db, b0 = -log_alpha, self.beta_max - self.beta_min, self.beta_min
        return (-0.5 * b0 + torch.sqrt(0.25 * b0**2 + db * c)) / (0.5 * db)

    def t_from_log_snr(self, lam):
        lam = _as_time(lam)
        # alpha^2 = sigmoid(2 lambda) when alpha^2 + sigma^2 = 1
        return self._t_from_log_alpha(-0.5 * torch.nn.functional.softplus(-2 * lam))

    def diffusion(self, t):
        return torch.sqrt(self.beta(t))

    @property
    def prior_std(self) -> float:
        return 1.0

    def config(self) -> dict:
        return {
            "type": "VPSDE",
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "T": self.T,
            "eps": self.eps,
        }


class SubVPSDE(VPSDE):
    """Sub-VP SDE: VP drift, ``g^2 = beta(t) (1 - exp(-2 b0 t - (b1 - b0) t^2))``.

    Marginal: ``alpha(t)`` as VP, ``sigma(t) = 1 - alpha(t)^2``; prior ``N(0, I)``.
    """

    def sigma(self, t):
        return -torch.expm1(2 * self._log_alpha(t))

    def diffusion(self, t):
        return torch.sqrt(self.beta(t) * -torch.expm1(4 * self._log_alpha(t)))

    def t_from_log_snr(self, lam):
        lam = _as_time(lam)
        # alpha / (1 - alpha^2) = e^lambda  =>  alpha = 2 e^lambda / (1 + sqrt(1 + 4 e^{2 lambda}))
        log_alpha = math.log(2.0) + lam - torch.log1p(torch.sqrt(1 + 4 * torch.exp(2 * lam)))
        return self._t_from_log_alpha(log_alpha)

    def config(self) -> dict:
        return {**super().config(), "type": "SubVPSDE"}


class VESDE(ForwardSDE):
    """Variance-exploding SDE: ``dx = sqrt(d sigma_ve(t)^2 / dt) dW``.

    ``sigma_ve(t) = smin (smax / smin)^t`` and ``g(t) = sigma_ve(t) sqrt(2 log(smax / smin))``.
    The exact marginal std is ``sqrt(sigma_ve(t)^2 - smin^2)`` (zero at ``t = 0``); the prior
    is ``N(0, smax^2 I)``.
    """

    def __init__(
        self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: float = 1.0, eps: float = 1e-5
    ):
        super().__init__(T=T, eps=eps)
        if not 0 < sigma_min < sigma_max:
            raise ValueError(
                f"need 0 < sigma_min < sigma_max; got sigma_min={sigma_min!r}, "
                f"sigma_max={sigma_max!r}"
            )
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def _sigma_ve(self, t):
        t = _as_time(t)
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def alpha(self, t):
        return torch.ones_like(_as_time(t))

    def sigma(self, t):
        return torch.sqrt(self._sigma_ve(t) ** 2 - self.sigma_min**2)

    def drift_coef(self, t):
        return torch.zeros_like(_as_time(t))

    def diffusion(self, t):
        return self._sigma_ve(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def t_from_log_snr(self, lam):
        lam = _as_time(lam)
        ratio = math.log(self.sigma_max / self.sigma_min)
        return torch.log1p(torch.exp(-2 * lam) / self.sigma_min**2) / (2 * ratio)

    def config(self) -> dict:
        return {
            "type": "VESDE",
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
            "T": self.T,
            "eps": self.eps,
        }


class MeanRevertingSDE(VPSDE):
    """The mean-reverting SDE of IR-SDE (Luo et al. 2023), ``dx = theta_t (mu - x) dt +
    sqrt(2 lam^2 theta_t) dW``, towards a degraded signal ``mu``, in the shifted variable
    ``y = x - mu`` (``mu`` is per-sample conditioning, so the SDE object sees ``y``).

    ``theta_t = theta_0 + t (theta_1 - theta_0)`` (``theta_schedule = (theta_0, theta_1)``),
    ``thetabar_t = int_0^t theta``; the marginal is ``x_t ~ N(mu + (x_0 - mu)
    e^{-thetabar_t}, lam^2 (1 - e^{-2 thetabar_t}))``, i.e. a VP-type SDE in ``y`` with
    ``alpha_t = e^{-thetabar_t}``, ``sigma_t = lam sqrt(1 - alpha_t^2)`` and prior ``N(0,
    lam^2)``: the VPSDE with ``beta = 2 theta``, scaled by ``lam``. The samplers (and so MRS,
    Li et al. 2025, the exponential integrators on this form) run on it unchanged.

    Example:
        >>> sde = MeanRevertingSDE((0.1, 10.0), lam=0.5)
        >>> round(float(sde.sigma(1.0)), 4), sde.prior_std
        (0.5, 0.5)
    """

    def __init__(self, theta_schedule=(0.1, 10.0), lam: float = 0.5, T: float = 1.0,
                 eps: float = 1e-3):  # fmt: skip
        try:
            theta_0, theta_1 = (float(v) for v in theta_schedule)
        except (TypeError, ValueError):
            raise ValueError(
                f"theta_schedule must be (theta_0, theta_1); got {theta_schedule!r}"
            ) from None
        super().__init__(beta_min=2 * theta_0, beta_max=2 * theta_1, T=T, eps=eps)
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"lam must be a positive number; got {lam!r}")
        self.theta_schedule, self.lam = (theta_0, theta_1), float(lam)

    def sigma(self, t):
        return self.lam * super().sigma(t)

    def diffusion(self, t):
        return self.lam * super().diffusion(t)

    @property
    def prior_std(self) -> float:
        return self.lam

    def t_from_log_snr(self, lam):
        return super().t_from_log_snr(_as_time(lam) + math.log(self.lam))

    def config(self) -> dict:
        return {"type": "MeanRevertingSDE", "theta_schedule": list(self.theta_schedule),
                "lam": self.lam, "T": self.T, "eps": self.eps}  # fmt: skip


def sde_from_config(config: dict) -> ForwardSDE:
    """Rebuild a forward SDE from ``ForwardSDE.config()``."""
    kinds = {"VPSDE": VPSDE, "SubVPSDE": SubVPSDE, "VESDE": VESDE,
             "MeanRevertingSDE": MeanRevertingSDE}  # fmt: skip
    if not isinstance(config, dict) or config.get("type") not in kinds:
        raise ValueError(f"sde config must be a dict with type in {sorted(kinds)}; got {config!r}")
    kw = {k: v for k, v in config.items() if k != "type"}
    return kinds[config["type"]](**kw)
