"""``train_score``: denoising score matching on the shared training loop, with an EMA of the
weights (the EMA copy is what samples; Song et al. use decay 0.999-0.9999)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from neuralsde.data.validation import as_float_tensor
from neuralsde.diffusion.losses import dsm_loss, edm_loss
from neuralsde.diffusion.score import ScoreModel
from neuralsde.train import fit


class EMA(nn.Module):
    """Exponential moving average ``theta_ema <- d theta_ema + (1 - d) theta`` of a module."""

    def __init__(self, module: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1); got {decay!r}")
        self.decay = float(decay)
        self.shadow = copy.deepcopy(module)
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int | None = None) -> None:
        # warm-up (1 + n) / (10 + n) so that a short run is not dominated by the initial weights
        d = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.shadow.parameters(), module.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            e.copy_(b)


class _Trainee(nn.Module):
    def __init__(self, model: ScoreModel, decay: float):
        super().__init__()
        self.model = model
        self.ema = EMA(model, decay)
        self.steps = 0


def train_score(
    data: torch.Tensor,
    sde,
    net: nn.Module,
    *,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 2e-3,
    ema_decay: float = 0.999,
    likelihood_weighting: bool = False,
    grad_clip: float | None = 1.0,
    lr_schedule="cosine",
    generator: torch.Generator | None = None,
    verbose: bool = True,
    callback=None,
    preconditioning: str = "noise",
    sigma_data: float = 0.5,
):
    """Fit ``net`` to ``data: (n, *shape)`` by denoising score matching.

    ``preconditioning="noise"`` trains a noise prediction with :func:`dsm_loss`; ``"edm"``
    trains EDM's preconditioned denoiser with :func:`edm_loss` (``sigma_data``: the data's
    standard deviation); see :class:`ScoreModel`.

    ``data`` is a tensor or a numpy array, of any float dtype: it is cast to the dtype of
    ``net``'s parameters.

    Runs :func:`neuralsde.train.fit` (no early stopping; the final state is kept) and updates
    the EMA after every optimiser step. Returns ``(score_model, history)`` where
    ``score_model`` is a :class:`ScoreModel` around the EMA weights, in eval mode.

    Example:
        >>> import torch
        >>> from neuralsde.diffusion import VPSDE, ScoreMLP
        >>> data = torch.randn(256, 2)
        >>> model, hist = train_score(data, VPSDE(), ScoreMLP(2, hidden=16), epochs=2,
        ...                           batch_size=64, verbose=False)
        >>> len(hist.train_loss)
        2
    """
    param = next(net.parameters(), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    data = as_float_tensor(data, "data", dtype, min_dim=2)
    trainee = _Trainee(ScoreModel(net, sde, preconditioning, sigma_data), ema_decay)
    if preconditioning == "edm" and likelihood_weighting:
        raise ValueError("likelihood_weighting: EDM's loss has its own weighting; pass False")

    def loss_fn(m: _Trainee, batch):
        if m.training and m.steps > 0:
            m.ema.update(m.model, m.steps)
        if m.training:
            m.steps += 1
        if preconditioning == "edm":
            return edm_loss(m.model, sde, batch)
        return dsm_loss(m.model, sde, batch, likelihood_weighting=likelihood_weighting)

    hist = fit(
        trainee,
        loss_fn,
        data,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        patience=None,
        lr_schedule=lr_schedule,
        grad_clip=grad_clip,
        generator=generator,
        verbose=verbose,
        callback=callback,
        desc="train_score",
    )
    out = ScoreModel(trainee.ema.shadow.net, sde, preconditioning, sigma_data).eval()
    return out, hist
