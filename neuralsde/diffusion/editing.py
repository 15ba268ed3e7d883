"""SDEdit (Meng et al., ICLR 2022): edit a rough guide into a realistic sample by noising it
to an intermediate time ``t0`` with the forward marginal and sampling back to 0.

A small ``t0`` stays faithful to the guide; ``t0 = 1`` forgets it (an unconditional
sample). With a ``mask``, only the masked region is regenerated: the rest is held to the
re-noised original at every step (exact conditioning of those coordinates, as
:class:`~neuralsde.diffusion.guidance.Inpaint` does), so it ends as the original.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from neuralsde.data.validation import as_float_tensor
from neuralsde.diffusion.arguments import check_steps
from neuralsde.diffusion.guidance import Inpaint
from neuralsde.diffusion.sampling import sample

__all__ = ["edit"]


def edit(score_model, sde, guide, t0: float, mask=None, repeats: int = 1, method: str = "euler",
         steps: int = 100, generator=None):  # fmt: skip
    """SDEdit ``guide: (batch, *event)`` at strength ``t0`` in ``(0, 1]`` (a fraction of the
    SDE's horizon ``T``).

    Args:
        mask: boolean ``(*event)`` or ``(batch, *event)``, True where the sample is
            regenerated; elsewhere the guide is kept (default: everywhere regenerated).
        repeats: edits per guide.
        method, steps: the sampler and its number of uniform steps from ``t0 T`` to
            ``sde.eps``.

    Returns:
        ``(repeats, batch, *event)`` edits.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, GaussianMixture
        >>> sde, gm = VPSDE(), GaussianMixture.default_2d()
        >>> out = edit(gm.score_fn(sde), sde, torch.zeros(5, 2), t0=0.5, repeats=3, steps=20)
        >>> out.shape
        torch.Size([3, 5, 2])
    """
    if isinstance(t0, bool) or not isinstance(t0, numbers.Real) or not 0 < t0 <= 1:
        raise ValueError(f"t0 must lie in (0, 1] (a fraction of the horizon T); got {t0!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    steps = check_steps(steps)
    guide = as_float_tensor(guide, "guide", None, min_dim=2)
    event = tuple(guide.shape[1:])
    start = float(t0) * sde.T
    if not start > sde.eps:
        raise ValueError(f"t0={t0!r} puts the start at t={start:g}, not above the SDE's "
                         f"eps={sde.eps:g}: nothing to sample")  # fmt: skip
    batch = guide.shape[0] * int(repeats)
    rep = guide.repeat(int(repeats), *([1] * len(event)))  # (repeats * batch, *event)
    guidance = None
    if mask is not None:
        arr = mask if torch.is_tensor(mask) else np.asarray(mask)
        bool_mask = (arr.dtype == torch.bool) if torch.is_tensor(arr) else arr.dtype == np.bool_
        if not bool_mask or tuple(arr.shape) not in (event, tuple(guide.shape)):
            raise ValueError(
                f"mask must be boolean of shape {event} or {tuple(guide.shape)} (True where "
                f"the sample is regenerated); got {arr.dtype} of shape {tuple(arr.shape)}"
            )
        keep = ~torch.as_tensor(arr)
        if keep.dim() == guide.dim():
            keep = keep.repeat(int(repeats), *([1] * len(event)))
        guidance = Inpaint(keep.expand(rep.shape), rep)
    t = torch.tensor(start, dtype=torch.float64)
    alpha, sigma = float(sde.alpha(t)), float(sde.sigma(t))
    noise = torch.randn(rep.shape, generator=generator, dtype=rep.dtype)
    x_start = alpha * rep + sigma * noise
    knots = torch.linspace(start, sde.eps, steps + 1, dtype=torch.float64)
    out = sample(score_model, sde, (batch, *event), method=method, guidance=guidance,
                 generator=generator, schedule=knots, x_T=x_start, t_start=start,
                 dtype=rep.dtype)  # fmt: skip
    return out.reshape(int(repeats), guide.shape[0], *event)
