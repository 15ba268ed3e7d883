"""Guidance: conditioning a sampler on observations or physics by wrapping the score.

Every sampler integrates a drift built from the score, so wrapping the score wraps the drift:

- :class:`Inpaint` replaces the score at observed coordinates by the exact score of the
  forward-noised observation, ``-(x - alpha y) / sigma^2`` (continuous-time inpainting);
- :class:`ObservationGuidance` adds ``-grad_x L`` with
  ``L = weight |M (x0_hat(x, t) - y)|^2 / (2 r_t^2)``, ``r_t^2 = sigma_y^2 + sigma_t^2 /
  alpha_t^2`` (diffusion posterior sampling with the pseudo-inverse-guidance variance of
  ``x_0 | x_t``; it cancels the ``1 / alpha_t`` of Tweedie's estimate at high noise, so the
  correction stays bounded however imperfect the network);
- :class:`ResidualGuidance` adds ``-grad_x weight |R(x0_hat)|^2 / 2`` for a residual ``R``
  (e.g. a PDE), only for ``t < t_start`` (late in sampling, as in DiffusionPDE).

``x0_hat = (x + sigma^2 score) / alpha`` is Tweedie's denoiser.
"""

from __future__ import annotations

import torch

from neuralsde.diffusion.reverse import tweedie


def _view(v, x):
    return v.reshape((-1,) + (1,) * (x.dim() - 1))


class _Observed:
    def __init__(self, mask, values):
        mask = torch.as_tensor(mask)
        values = torch.as_tensor(values)
        if mask.shape != values.shape:
            raise ValueError(
                f"mask and values must have the same shape; got mask {tuple(mask.shape)}, "
                f"values {tuple(values.shape)}"
            )
        if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
            bad = mask[(mask != 0) & (mask != 1)].reshape(-1)[0].item()
            raise ValueError(f"mask must be boolean (or 0/1); got the value {bad!r}")
        self.mask = mask.to(torch.bool)
        if not values.is_floating_point():
            values = values.to(torch.get_default_dtype())
        observed = values[self.mask]
        if not bool(torch.isfinite(observed).all()):
            where = torch.nonzero(self.mask & ~torch.isfinite(values))[0].tolist()
            raise ValueError(
                f"values must be finite where mask is True; got {values[tuple(where)].item()} "
                f"at index {tuple(where)}"
            )
        self.values = torch.nan_to_num(values.to(torch.get_default_dtype()))

    def check_shape(self, shape) -> None:
        """Raise ValueError unless the mask is ``shape`` or ``shape[1:]`` (broadcast)."""
        shape = tuple(shape)
        if tuple(self.mask.shape) not in (shape, shape[1:]):
            raise ValueError(
                f"observation mask of shape {tuple(self.mask.shape)} does not match the sample "
                f"shape {shape}; expected {shape} or {shape[1:]}"
            )

    def _mv(self, x):
        return self.mask.to(x.device), self.values.to(dtype=x.dtype, device=x.device)


class Inpaint(_Observed):
    """Exact conditioning of observed coordinates: ``mask: (*shape)`` or ``(batch, *shape)``
    boolean, ``values`` the observations there (anything elsewhere)."""

    def apply(self, x, t, score, alpha, sigma):
        m, y = self._mv(x)
        return torch.where(m, -(x - alpha * y) / sigma**2, score)


class ObservationGuidance(_Observed):
    """Soft observation guidance (see the module docstring); ``sigma_y`` is the observation
    noise std in data units, ``weight`` scales the guidance. For ``t < t_switch`` the weight
    is multiplied by ``late_factor`` (DiffusionPDE lowers it to a tenth once the PDE residual
    joins)."""

    def __init__(self, mask, values, weight: float = 1.0, sigma_y: float = 0.05,
                 t_switch: float | None = None, late_factor: float = 1.0):  # fmt: skip
        super().__init__(mask, values)
        self.weight, self.sigma_y = float(weight), float(sigma_y)
        self.t_switch = None if t_switch is None else float(t_switch)
        self.late_factor = float(late_factor)

    def loss(self, x0, t, alpha, sigma):
        m, y = self._mv(x0)
        r2 = self.sigma_y**2 + (sigma / alpha) ** 2
        sq = torch.where(m, (x0 - y) ** 2, torch.zeros_like(x0)) / r2
        if self.t_switch is not None:
            late = torch.as_tensor(t, dtype=x0.dtype, device=x0.device) < self.t_switch
            sq = sq * _view(torch.where(late, self.late_factor, 1.0), x0)
        return 0.5 * self.weight * sq.sum()


class ResidualGuidance:
    """Physics guidance ``weight |residual_fn(x0_hat)|^2 / 2`` for ``t < t_start``.

    ``residual_fn(x0: (batch, *shape)) -> (batch, ...)``. With ``sigma_r`` the residual is
    treated as an observation ``R(x_0) = 0`` with noise ``sigma_r``, like
    :class:`ObservationGuidance`: the loss is divided by ``sigma_r^2 + sigma_t^2 / alpha_t^2``,
    so that its pull on the sample does not vanish as the noise level falls (without it the
    term is added to a score of size ``1 / sigma_t^2`` and fades at low noise).
    """

    def __init__(self, residual_fn, weight: float = 1.0, t_start: float = 0.2,
                 sigma_r: float | None = None):  # fmt: skip
        if not callable(residual_fn):
            raise TypeError(f"residual_fn must be callable; got {type(residual_fn).__name__}")
        if sigma_r is not None and not float(sigma_r) > 0:
            raise ValueError(f"sigma_r must be positive or None; got {sigma_r!r}")
        self.residual_fn, self.weight, self.t_start = residual_fn, float(weight), float(t_start)
        self.sigma_r = None if sigma_r is None else float(sigma_r)

    def check_shape(self, shape) -> None:
        return None

    def loss(self, x0, t, alpha, sigma):
        active = (t < self.t_start).to(x0.dtype)
        if not bool(active.any()):
            return None
        r = self.residual_fn(x0)
        per = r.pow(2).reshape(r.shape[0], -1).sum(-1)
        if self.sigma_r is not None:
            per = per / (self.sigma_r**2 + (sigma / alpha).reshape(-1) ** 2)
        return 0.5 * self.weight * (active * per).sum()


def as_guidance_list(guidance) -> list:
    if guidance is None:
        return []
    items = list(guidance) if isinstance(guidance, list | tuple) else [guidance]
    for g in items:
        if not isinstance(g, Inpaint | ObservationGuidance | ResidualGuidance):
            raise TypeError(
                f"guidance must be Inpaint, ObservationGuidance, ResidualGuidance or a list of "
                f"them; got {type(g).__name__}"
            )
    return items


def guided_score(score_fn, sde, guidance):
    """Wrap ``score_fn(x, t)`` with a list of guidance terms; returns a new ``(x, t) -> score``.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE
        >>> mask = torch.tensor([True, False])
        >>> fn = guided_score(lambda x, t: -x, VPSDE(), Inpaint(mask, torch.tensor([1.0, 0.0])))
        >>> fn(torch.zeros(3, 2), torch.full((3,), 0.5)).shape
        torch.Size([3, 2])
    """
    items = as_guidance_list(guidance)
    if not items:
        return score_fn
    inpaint = [g for g in items if isinstance(g, Inpaint)]
    soft = [g for g in items if not isinstance(g, Inpaint)]

    def fn(x, t):
        alpha, sigma = _view(sde.alpha(t), x), _view(sde.sigma(t), x)
        if not soft:
            s = score_fn(x, t)
        else:
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                s = score_fn(xg, t)
                x0 = tweedie(xg, s, alpha, sigma)
                losses = [g.loss(x0, t, alpha, sigma) for g in soft]
                losses = [v for v in losses if v is not None]
                if losses:
                    (grad,) = torch.autograd.grad(sum(losses), xg)
                    s = s.detach() - grad
                else:
                    s = s.detach()
        for g in inpaint:
            s = g.apply(x, t, s, alpha, sigma)
        return s

    return fn
