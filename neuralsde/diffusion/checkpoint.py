"""Save and load score-model checkpoints with their configuration, validated on load.

A checkpoint is one ``torch.save`` file: ``{"format", "net", "sde", "precond", "meta",
"state_dict"}`` where ``net`` is the network's constructor config, ``sde`` the forward SDE's
config, ``precond`` the score model's parametrisation (absent in older files: noise
prediction) and ``meta`` free-form (data normalisation, resolution, training record). Weights
may be stored in float16 to keep files small; they are loaded back in float32.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import torch

from neuralsde.diffusion.nets import ScoreMLP
from neuralsde.diffusion.score import PRECONDITIONINGS, ScoreModel
from neuralsde.diffusion.sdes import sde_from_config
from neuralsde.diffusion.unet import UNet

FORMAT = "neuralsde.diffusion/1"
_NETS = {"mlp": ScoreMLP, "unet": UNet}
NOISE = {"kind": "noise", "sigma_data": 0.5}


def net_from_config(config: dict) -> torch.nn.Module:
    """Build a score network from its ``.config`` dict."""
    if not isinstance(config, dict) or config.get("kind") not in _NETS:
        raise ValueError(f"net config must be a dict with kind in {sorted(_NETS)}; got {config!r}")
    kw = {k: v for k, v in config.items() if k != "kind"}
    if config["kind"] == "unet":
        kw["mults"] = tuple(kw["mults"])
    return _NETS[config["kind"]](**kw)


def save_checkpoint(
    path, score_model: ScoreModel, meta: dict | None = None, half: bool = False
) -> None:
    """Write ``score_model`` (a :class:`ScoreModel` whose net has a ``.config``) to ``path``."""
    if not isinstance(score_model, ScoreModel) or not hasattr(score_model.net, "config"):
        raise TypeError(
            f"score_model must be a ScoreModel around a ScoreMLP or UNet; got "
            f"{type(score_model).__name__}"
        )
    state = {
        k: (v.half() if half and v.is_floating_point() else v).cpu()
        for k, v in score_model.net.state_dict().items()
    }
    torch.save(
        {
            "format": FORMAT,
            "net": score_model.net.config,
            "sde": score_model.sde.config(),
            "precond": score_model.config(),
            "meta": dict(meta or {}),
            "state_dict": state,
        },
        path,
    )


def _compare(where: str, stored: dict, expected: dict) -> None:
    for key, want in expected.items():
        if key not in stored:
            raise ValueError(f"checkpoint {where} has no key {key!r}; expected {key}={want!r}")
        got = stored[key]
        if isinstance(want, dict) and isinstance(got, dict):
            _compare(f"{where}.{key}", got, want)
        elif (list(got) if isinstance(got, tuple) else got) != (
            list(want) if isinstance(want, tuple) else want
        ):
            raise ValueError(
                f"checkpoint config mismatch at {where}.{key}: the file has {got!r}, "
                f"expected {want!r}"
            )


def load_checkpoint(path, expected: dict | None = None, map_location="cpu"):
    """Load ``(score_model, meta)`` from ``path``.

    ``expected`` may hold any of ``{"net", "sde", "precond", "meta"}`` (each a dict); every key
    given must match the stored configuration, else a ValueError names the key, the stored
    value and the expected one.

    Example:
        >>> import tempfile, os
        >>> from neuralsde.diffusion import VPSDE, ScoreModel, ScoreMLP
        >>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
        >>> save_checkpoint(path, ScoreModel(ScoreMLP(2, hidden=8), VPSDE()), {"data": "toy"})
        >>> model, meta = load_checkpoint(path, expected={"meta": {"data": "toy"}})
        >>> meta["data"]
        'toy'
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path} cannot be loaded as a neuralsde diffusion checkpoint: it is corrupted, "
            f"truncated, or holds objects other than tensors and plain data (which are never "
            f"unpickled); {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(
            f"{path} is not a neuralsde diffusion checkpoint (format {got!r}, expected {FORMAT!r})"
        )
    ckpt.setdefault("precond", NOISE)  # written before the parametrisation was stored
    if expected is not None:
        if not isinstance(expected, dict) or set(expected) - {"net", "sde", "precond", "meta"}:
            raise ValueError(
                f"expected must be a dict with keys among net, sde, precond, meta; got {expected!r}"
            )
        for part, want in expected.items():
            _compare(part, ckpt[part], want)
    net = net_from_config(ckpt["net"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint weights do not fit the net config {ckpt['net']}: {err}"
        ) from err
    model = _score_model(net, ckpt["sde"], ckpt["precond"])
    return model, ckpt["meta"]


def _score_model(net, sde_config: dict, precond: dict) -> ScoreModel:
    if not isinstance(precond, dict) or precond.get("kind") not in PRECONDITIONINGS:
        raise ValueError(f"precond config must be a dict with kind in {list(PRECONDITIONINGS)}; "
                         f"got {precond!r}")  # fmt: skip
    sd = float(precond.get("sigma_data", 0.5))
    return ScoreModel(net, sde_from_config(sde_config), precond["kind"], sd).eval()


def to_bytes(score_model: ScoreModel) -> tuple[str, bytes]:
    """``(config JSON, safetensors weights)`` of a :class:`ScoreModel` around a ``ScoreMLP`` or
    ``UNet``: how a score model travels to dask workers (no pickle)."""
    from safetensors.torch import save

    if not isinstance(score_model, ScoreModel) or not hasattr(score_model.net, "config"):
        raise TypeError(
            f"score_model must be a ScoreModel around a ScoreMLP or UNet; got "
            f"{type(score_model).__name__}"
        )
    state = {k: v.detach().cpu().contiguous().clone()
             for k, v in score_model.net.state_dict().items()}  # fmt: skip
    weights = save(state)
    config = {"format": FORMAT, "net": score_model.net.config, "sde": score_model.sde.config(),
              "precond": score_model.config(),
              "weights_sha256": hashlib.sha256(weights).hexdigest()}  # fmt: skip
    return json.dumps(config), weights


def from_bytes(config: str, weights: bytes) -> ScoreModel:
    """The :class:`ScoreModel` of :func:`to_bytes`'s ``(config, weights)``."""
    from safetensors.torch import load

    cfg = json.loads(config)
    if cfg.get("format") != FORMAT:
        raise ValueError(f"config is not a neuralsde diffusion score model ({cfg.get('format')!r})")
    if cfg.get("weights_sha256") != hashlib.sha256(weights).hexdigest():
        raise ValueError("weights do not match the SHA-256 recorded in config")
    net = net_from_config(cfg["net"])
    net.load_state_dict(load(weights))
    return _score_model(net, cfg["sde"], cfg.get("precond", NOISE))
