"""The peers' diffusion samplers, loaded for side-by-side checks (test-only dependencies).

k-diffusion's package ``__init__`` imports its training code (torchvision, CLIP, wandb, ...);
its samplers need none of that, so :func:`k_sampling` loads ``k_diffusion.sampling`` (and the
``utils`` it imports) without running the package ``__init__``, with an empty stand-in for
``torchvision.transforms.functional`` when torchvision is absent (``utils`` imports it for
image helpers the samplers never call). diffusers' schedulers import as they are.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def k_sampling():
    """The module ``k_diffusion.sampling`` (raises ImportError when k-diffusion is absent)."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or spec.origin is None:
        raise ImportError("k-diffusion is not installed (pip install --no-deps k-diffusion)")
    stubs = []
    if importlib.util.find_spec("torchvision") is None:
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            sys.modules[name] = types.ModuleType(name)
            stubs.append(name)
    if "k_diffusion" not in sys.modules:
        pkg = types.ModuleType("k_diffusion")
        pkg.__path__ = [str(Path(spec.origin).parent)]
        sys.modules["k_diffusion"] = pkg
    try:
        return importlib.import_module("k_diffusion.sampling")
    finally:  # the stand-ins must not make other packages think torchvision is installed
        for name in stubs:
            sys.modules.pop(name, None)


def vp_alphas_cumprod(sde, n_train: int = 1000):
    """``alpha_t^2`` of ``sde`` at the discrete timesteps ``k = 0..n_train-1`` of diffusers'
    schedulers, read as ``t = (k + 1) / n_train`` (float64), and the matching ``betas``."""
    import torch

    t = torch.arange(1, n_train + 1, dtype=torch.float64) / n_train * sde.T
    abar = sde.alpha(t).double() ** 2
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    return abar, 1 - abar / prev
