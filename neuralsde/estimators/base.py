"""The contract every neuralsde estimator shares: scikit-learn parameters, the one input gate,
and saving as safetensors weights plus a versioned JSON config (never a pickle).

A saved estimator is a folder:

* ``config.json``: ``{"format": "neuralsde-estimator", "schema": 1, "estimator": <class>,
  "version": <neuralsde version>, "params": get_params(), "fitted": <JSON-able state>,
  "weights_sha256": <hex digest of the weights file, checked on load>}``;
* ``weights.safetensors``: every tensor of the fitted state (module weights under
  ``"<module>.<name>"``, arrays under their attribute's name).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from neuralsde.core.arguments import check_seed
from neuralsde.data import IrregularBatch
from neuralsde.data.coerce import align_channels
from neuralsde.data.scaling import encode_period
from neuralsde.parallel import is_main

__all__ = ["MAX_STEPS", "SCHEMA", "NeuralSDEEstimator", "check_steps"]

SCHEMA = 1
FORMAT = "neuralsde-estimator"
CONFIG, WEIGHTS = "config.json", "weights.safetensors"
MAX_STEPS = 1_000_000  # solver steps one query may ask for before it is refused


def check_steps(span: float, dt: float, name: str) -> None:
    """Refuse, before anything is allocated, a query whose solve would take more than
    ``MAX_STEPS`` steps of ``dt`` over ``span`` (both on the model's time axis)."""
    steps = span / dt
    if not steps <= MAX_STEPS:
        raise ValueError(
            f"{name} reach {span:.4g} training spans past the data, {steps:.3g} solver steps "
            f"of dt={dt:.3g}; at most {MAX_STEPS:,} are allowed (check the units of {name})"
        )


class NeuralSDEEstimator(BaseEstimator):
    """Base class of the estimators: input gate, fitted-state bookkeeping, save and load.

    Subclasses list their JSON-able fitted attributes in ``_fitted_json`` and their tensor
    ones in ``_fitted_tensors``, name the modules to save in ``_modules`` (attribute names,
    ``model_`` by default) and rebuild them from parameters and fitted state in
    ``_build_modules()``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            cls.fit = _atomic(cls.__dict__["fit"])

    _fitted_json: tuple[str, ...] = ()
    _fitted_extra: tuple[str, ...] = ()  # other keys a subclass's own _fitted_state writes
    _fitted_tensors: tuple[str, ...] = ()
    _modules: tuple[str, ...] = ("model_",)
    _fitted_marker = "model_"

    # ------------------------------------------------------------------ input
    def _batch(self, X, name="X", fitting=False, **kwargs) -> IrregularBatch:
        """``X`` through the input gate; once fitted (and unless ``fitting``), with its
        channels matched to the fitted ones (by name when both have names)."""
        batch = IrregularBatch.coerce(X, name, **kwargs)
        if not fitting and hasattr(self, "channels_"):
            batch = align_channels(batch, self.channels_, name)
        return batch

    # ------------------------------------------------------------------ state
    def _fitted_state(self) -> tuple[dict, dict]:
        """``(json_state, tensors)`` of the fitted estimator."""
        state = {k: _to_json(getattr(self, k)) for k in self._fitted_json if hasattr(self, k)}
        if hasattr(self, "scaler_"):
            state["scaler_"] = self.scaler_.to_dict()
        tensors = {k: torch.as_tensor(getattr(self, k)) for k in self._fitted_tensors
                   if getattr(self, k, None) is not None}  # fmt: skip
        for m in self._modules:
            module = getattr(self, m, None)
            if module is not None:
                tensors.update({f"{m}.{k}": v for k, v in module.state_dict().items()})
        return state, tensors

    def _restore(self, state: dict, tensors: dict) -> None:
        """Set the fitted attributes from a saved state and rebuild the modules."""
        from neuralsde.data.scaling import Scaler

        for k, v in state.items():
            setattr(self, k, Scaler.from_dict(v) if k == "scaler_" else _from_json(v))
        for k in self._fitted_tensors:
            if k in tensors:
                setattr(self, k, tensors[k])
        self._build_modules()
        for m in self._modules:
            module = getattr(self, m, None)
            if module is None:
                continue
            own = {k[len(m) + 1 :]: v for k, v in tensors.items() if k.startswith(m + ".")}
            try:
                module.load_state_dict(own)
            except RuntimeError as err:
                raise ValueError(f"the saved weights do not fit {m}: {err}") from None
            module.eval()

    def _build_modules(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def to_bytes(self) -> tuple[str, bytes]:
        """The fitted estimator as ``(config JSON text, safetensors bytes)``: what :meth:`save`
        writes, and how the model travels to dask workers (no pickle of torch objects)."""
        from safetensors.torch import save

        from neuralsde import __version__

        check_is_fitted(self, self._fitted_marker)
        state, tensors = self._fitted_state()
        weights = save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})
        config = {
            "format": FORMAT,
            "schema": SCHEMA,
            "estimator": type(self).__name__,
            "version": __version__,
            "params": {k: _to_json(v) for k, v in self.get_params(deep=False).items()},
            "fitted": state,
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
        }
        return json.dumps(config, indent=2), weights

    def save(self, path) -> Path:
        """Write the fitted estimator to the folder ``path`` (created if needed).

        ``config.json`` holds the parameters and the fitted state; ``weights.safetensors``
        the tensors. Nothing is pickled. Returns the folder. Under torch.distributed only
        rank 0 writes (every rank holds the same fitted state).
        """
        check_is_fitted(self, self._fitted_marker)
        folder = Path(path)
        if not is_main():
            return folder
        config, weights = self.to_bytes()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / WEIGHTS).write_bytes(weights)
        (folder / CONFIG).write_text(config)
        return folder

    @classmethod
    def load(cls, path, device=None):
        """Rebuild an estimator written by :meth:`save`.

        Raises:
            FileNotFoundError: no saved estimator at ``path``.
            ValueError: the files are corrupted or truncated, were written by another class,
                or by a newer neuralsde (a higher schema).
        """
        folder = Path(path)
        config_path, weights_path = folder / CONFIG, folder / WEIGHTS
        for p in (config_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"path {folder} holds no saved estimator: {p} is missing")
        try:
            config = config_path.read_text()
        except UnicodeDecodeError as err:
            raise ValueError(f"{config_path} is corrupted or truncated (not JSON: {err})") from None
        return cls.from_bytes(config, weights_path.read_bytes(), device=device,
                              source=(str(config_path), str(weights_path)))  # fmt: skip

    @classmethod
    def from_bytes(cls, config: str, weights: bytes, device=None, source=None):
        """Rebuild an estimator from :meth:`to_bytes`'s ``(config, weights)``; ``source``
        names the two in errors (default ``("config", "weights")``). Raises ValueError as
        :meth:`load` does."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        config_path, weights_path = source or ("config", "weights")
        folder = Path(config_path).parent if source else "the payload"
        try:
            config = json.loads(config)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{config_path} is corrupted or truncated (not JSON: {err})") from None
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise ValueError(f"{config_path} is not a neuralsde estimator config")
        if config.get("estimator") != cls.__name__:
            raise ValueError(
                f"{folder} holds a {config.get('estimator')}, not a {cls.__name__}; load it "
                f"with {config.get('estimator')}.load"
            )
        schema = config.get("schema")
        if not isinstance(schema, int) or schema > SCHEMA:
            raise ValueError(
                f"{config_path} has schema {schema!r}, written by neuralsde "
                f"{config.get('version')}; this version reads schema <= {SCHEMA}: upgrade"
            )
        digest = config.get("weights_sha256")
        if digest is not None and digest != hashlib.sha256(weights).hexdigest():
            raise ValueError(
                f"{weights_path} is corrupted or truncated: it does not match the SHA-256 "
                f"recorded in {config_path} (the weights changed after saving)"
            )
        try:
            tensors = load(weights)
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"{weights_path} is corrupted or truncated: {err}") from None
        if not isinstance(config.get("params"), dict):
            raise ValueError(f"{config_path} has no 'params' object: it is not a saved estimator")
        params = {k: _from_json(v) for k, v in config["params"].items()}
        try:
            est = cls(**params)
        except TypeError as err:
            raise ValueError(f"{config_path} holds parameters {cls.__name__} does not take: "
                             f"{err}") from None  # fmt: skip
        if device is not None and "device" in params:
            est.device = device
        fitted = config.get("fitted", {})
        known = {*cls._fitted_json, *cls._fitted_extra, "scaler_"}
        unknown = sorted(set(fitted) - known) if isinstance(fitted, dict) else None
        if unknown is None or unknown:
            raise ValueError(
                f"{config_path}: 'fitted' may hold only {sorted(known)}; got "
                f"{unknown if unknown is not None else type(fitted).__name__}"
            )
        try:
            est._restore(fitted, tensors)
        except (AttributeError, KeyError, IndexError, TypeError) as err:
            raise ValueError(
                f"{config_path}: the fitted state is incomplete or malformed "
                f"({type(err).__name__}: {err})"
            ) from None
        return est

    def _season(self, batch) -> float | None:
        """``seasonal_period`` (with ``harmonics``) on the batch's encoded time axis, checked;
        None without one."""
        if self.seasonal_period is None:
            return None
        k = self.harmonics
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"harmonics must be a positive int; got {k!r}")
        counts = batch.mask.sum((0, 1))
        if int(counts.min()) < 2 * k + 2:
            raise ValueError(
                f"seasonal_period: fitting {k} harmonics needs at least {2 * k + 2} observations "
                f"per channel; got {int(counts.min())}"
            )
        return encode_period(self.seasonal_period, batch.time_encoding, "seasonal_period")


# ------------------------------------------------------------------------------ JSON values
def _atomic(fit):
    """``fit`` that leaves the estimator unfitted when it does not finish: on any exception
    (an interrupt, a divergence with nothing kept, bad input found late) every fitted
    attribute (a name ending in ``_``) is removed before the exception goes on, so a
    half-trained model never looks fitted. The seed every estimator takes is checked first."""

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        check_seed(getattr(self, "random_state", None))
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
                delattr(self, name)
            raise

    return wrapper


def _to_json(v):
    """Parameters and fitted values as JSON: numpy scalars and arrays become lists, tagged
    so that :func:`_from_json` restores arrays (with their dtype) and tuples."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        kind = "datetime64[ns]" if np.issubdtype(v.dtype, np.datetime64) else v.dtype.str
        data = v.astype("datetime64[ns]").astype(np.int64) if kind.startswith("datetime") else v
        return {"__array__": _to_json(data.tolist()), "dtype": kind if v.dtype != object else "O"}
    if isinstance(v, torch.Tensor):
        return _to_json(v.detach().cpu().numpy())
    if isinstance(v, tuple):
        return {"__tuple__": [_to_json(x) for x in v]}
    if isinstance(v, list):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_json(x) for k, x in v.items()}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    raise TypeError(f"cannot store a {type(v).__name__} in an estimator's JSON config")


def _from_json(v):
    if isinstance(v, dict) and "__array__" in v:
        dtype = v["dtype"]
        if dtype.startswith("datetime"):
            return np.asarray(v["__array__"], dtype=np.int64).astype(dtype)
        return np.asarray(v["__array__"], dtype=object if dtype == "O" else np.dtype(dtype))
    if isinstance(v, dict) and "__tuple__" in v:
        return tuple(_from_json(x) for x in v["__tuple__"])
    if isinstance(v, dict):
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v
