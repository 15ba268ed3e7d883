"""Fuzzing ``neuralsde.solve``: clean cases, and cases with one bad argument."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde import SDE, solve

from .harness import case, examples, sweep

NAN, INF = float("nan"), float("inf")


class OU(SDE):
    """``dy = -theta y dt + sigma dW`` (additive noise: Ito and Stratonovich agree)."""

    noise_type = "diagonal"

    def __init__(self, sde_type="ito", theta=1.0, trouble=None):
        super().__init__()
        self.sde_type, self.theta, self.trouble = sde_type, theta, trouble

    def f(self, t, y):
        out = -self.theta * y
        if self.trouble == "shape" and float(t) > float(self.t0):  # the state grows
            return torch.cat([out, out], -1)
        return out

    def g(self, t, y):
        out = torch.full_like(y, 0.3)
        return out.to(torch.float16) if self.trouble == "dtype" else out


def _times(start, span, n, mess=None, dtype=torch.float64):
    ts = start + span * torch.linspace(0, 1, n, dtype=torch.float64)
    if mess == "reverse":
        ts = ts.flip(0)
    elif mess == "repeat":
        ts[1] = ts[0]
    elif mess in ("nan", "inf"):
        ts[-1] = NAN if mess == "nan" else INF
    return ts.to(dtype)


GOOD = {
    "batch": st.sampled_from([1, 3]),
    "dim": st.sampled_from([1, 2]),
    "dtype": st.sampled_from([torch.float64, torch.float32]),
    "ts": st.tuples(st.sampled_from([0.0, 0.45, -3.0, 1e3]),
                    st.sampled_from([1.0, 0.11, 1e-3]), st.integers(2, 5)),  # float64 at 1e3
    "method": st.sampled_from(["euler", "milstein", "srk", "heun", "midpoint",
                               "reversible_heun"]),
    "dt": st.sampled_from([None, 0.1, 0.01]),  # as a fraction of the span
    "adjoint": st.sampled_from([None, None, "backsolve", "reversible"]),
    "tol": st.sampled_from([None, None, (1e-3, 1e-3)]),
    "generator": st.just("gen"),
    "sde": st.just(None),
    "y0": st.just(None),
}  # fmt: skip
BAD = {
    "y0": st.sampled_from(["nan", "int", "list", "1d", "empty"]),
    "ts": st.sampled_from([(0.0, 1.0, 3, "reverse"), (0.0, 1.0, 3, "repeat"),
                           (0.0, 1.0, 3, "nan"), (0.0, 1.0, 3, "inf"), (0.0, 1.0, 1, None),
                           (0.0, 1.0, 0, None), (0.0, 1.0, 3, "int"),
                           (1e3, 0.11, 3, "float32")]),  # steps float32 cannot resolve there
    "method": st.sampled_from(["bogus", 3]),
    "dt": st.sampled_from([1e-9, 0.0, -0.1, NAN, INF, "0.1"]),
    "adjoint": st.sampled_from(["bogus", True]),
    "tol": st.sampled_from([(0.0, 0.0), (-1.0, 1e-3), (NAN, 1e-3), ("a", 1e-3),
                            (1e-10, 1e-10)]),
    "generator": st.sampled_from([5, "seed"]),
    "sde": st.sampled_from(["shape", "dtype", "nan", "stiff"]),
}  # fmt: skip
NAMES = {"tol": ("rtol", "atol"), "sde": ("sde", "f(", "g(", "drift", "diffusion", "dtype",
                                          "shape", "time")}  # fmt: skip


@settings(max_examples=examples(100))
@given(drawn=sweep(GOOD, BAD))
def test_solve(drawn):
    kw, culprit = drawn
    batch, dim, dtype, method, adjoint = kw["batch"], kw["dim"], kw["dtype"], kw["method"], \
        kw["adjoint"]  # fmt: skip
    if adjoint == "backsolve" and culprit != "method":
        method = "euler"
    if adjoint == "reversible" and culprit != "method":
        method = "reversible_heun"
    sde_type = "stratonovich" if method in ("heun", "midpoint", "reversible_heun") else "ito"
    sde = OU(sde_type, theta={"nan": NAN, "stiff": 1e6}.get(kw["sde"], 1.0), trouble=kw["sde"])
    y0 = torch.ones(batch, dim, dtype=dtype)
    y0 = {"nan": y0.clone().fill_(NAN), "int": y0.long(), "list": y0.tolist(),
          "1d": y0.reshape(-1), "empty": y0[:0]}.get(kw["y0"], y0)  # fmt: skip
    start, span, n, *mess = kw["ts"]
    mess = mess[0] if mess else None
    ts = _times(start, span, n, None if mess in ("int", "float32") else mess)
    if mess == "int":
        ts = ts.round().long()
    elif mess == "float32":
        ts, y0 = ts.float(), y0.float() if isinstance(y0, torch.Tensor) else y0
    elif abs(start) < 1e3:  # float32 times are fine near 0; near 1e3 they are a BAD case
        ts = ts.to(dtype)
    elif isinstance(y0, torch.Tensor) and y0.is_floating_point():
        y0 = y0.double()
    dt = kw["dt"] * span if isinstance(kw["dt"], float) and culprit != "dt" else kw["dt"]
    rtol, atol = kw["tol"] if kw["tol"] is not None else (None, None)
    if adjoint == "reversible" and culprit != "tol":
        rtol = atol = None  # reversible Heun's exact gradients need fixed steps
    gen = torch.Generator().manual_seed(0) if kw["generator"] == "gen" else kw["generator"]
    sde.t0 = ts[0] if len(ts) else 0.0

    def call():
        return solve(sde, y0, ts, method=method, dt=dt, adjoint=adjoint, generator=gen,
                     rtol=rtol, atol=atol, max_steps=5_000)  # fmt: skip

    def check(ys):
        assert ys.shape == (len(ts), batch, dim), f"shape {tuple(ys.shape)}"
        assert ys.dtype == y0.dtype, f"dtype {ys.dtype} for y0 {y0.dtype}"
        assert bool(torch.isfinite(ys).all()), "non-finite values returned"
        assert bool((ys[0] == y0).all()), "the solution does not start at y0"

    names = None if culprit is None else NAMES.get(culprit, (culprit,))
    case("solve", call, names, check, info=(kw, culprit))
