"""Chunked inference: an estimator's predictions over a dask-backed xarray object.

``predict(X)`` with ``X`` chunked along its series dimension builds a lazy result with
``xarray.map_blocks`` (:func:`neuralsde.data.chunks.map_series`): each block (a chunk of
series, every time stamp and channel) is predicted by the estimator rebuilt on the worker from
its saved config and weights (:meth:`~neuralsde.estimators.base.NeuralSDEEstimator.to_bytes`,
no pickle of torch objects). Under a ``dask.distributed`` client the blocks run on its
workers; without one, on dask's default scheduler.

Two things make a chunk predict exactly what the whole batch predicts for its series:

* what a prediction needs of the whole batch, its distinct time stamps (the knots of the
  control paths, the default output times, the common start), is read first, chunk by chunk,
  and handed to every block (so the data are read twice: once for the stamps, once to
  predict);
* prediction noise is keyed by series label (:class:`~neuralsde.core.keyed.KeyedGenerator`),
  not drawn for the batch as a whole.
"""

from __future__ import annotations

import importlib
import json

import numpy as np

from neuralsde.data.chunks import blocks, check_chunks, is_chunked, map_series, run_block

__all__ = ["chunked_predict", "is_chunked"]


def payload(est) -> tuple:
    """``(class path, config, weights)``: a fitted estimator as its saved config and
    weights; an unfitted one (a detector fitting each series) as its parameters alone."""
    from neuralsde.estimators.base import _to_json

    cls_path = f"{type(est).__module__}.{type(est).__qualname__}"
    if hasattr(est, est._fitted_marker):
        config, weights = est.to_bytes()
    else:
        params = {k: _to_json(v) for k, v in est.get_params(deep=False).items()}
        config, weights = json.dumps({"params": params}), b""
    return cls_path, config, weights


def rebuild(cls_path: str, config: str, weights: bytes):
    """The estimator of a :func:`payload`."""
    from neuralsde.estimators.base import _from_json

    module, name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    if not weights:
        params = json.loads(config)["params"]
        return cls(**{k: _from_json(v) for k, v in params.items()})
    return cls.from_bytes(config, weights, device="cpu")


def _predict(est, block, kind, stamps, kwargs):
    return est._predict_block(kind, block, stamps, **kwargs)


def _stamps(est, block):
    return est.scaler_.distinct_times(est._batch(block))


def chunked_predict(est, X, kind: str, *, name: str = "X", stamps: bool = True, **kwargs):
    """The lazy result of ``est._predict_block(kind, block, stamps, **kwargs)`` over the
    series chunks of ``X``, with the same dims and coordinates as the in-memory result.

    ``stamps``: whether the blocks need the whole batch's distinct time stamps (read first,
    one small task per chunk).
    """
    import dask

    X = check_chunks(X, name)
    load = payload(est)
    whole = None
    if stamps:
        parts = [dask.delayed(run_block)(b, rebuild, load, _stamps, {}) for b in blocks(X)]
        whole = np.unique(np.concatenate(dask.compute(*parts)))
    return map_series(X, rebuild, load, _predict,
                      {"kind": kind, "stamps": whole, "kwargs": kwargs}, name)  # fmt: skip
