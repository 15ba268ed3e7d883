"""Fuzzing the flow view (``train_velocity``, ``sample_flow``) and the superposition with
``return_logp`` (issue 17's entry points), every argument drawn from good and bad values."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde.diffusion import VESDE, VPSDE, ScoreMLP, sample
from neuralsde.diffusion.density import superpose
from neuralsde.diffusion.flows import sample_flow, train_velocity
from neuralsde.diffusion.toy import GaussianMixture

from .harness import case, examples, sweep

NAN = float("nan")
DATA = {
    "good": torch.randn(32, 2, generator=torch.Generator().manual_seed(0)),
    "nan": torch.full((32, 2), NAN),
    "empty": torch.zeros(0, 2),
    "flat": torch.randn(32),
    "text": "data",
}

TRAIN_GOOD = {
    "data": st.just("good"),
    "interpolant": st.sampled_from(["linear", "trig"]),
    "epochs": st.sampled_from([1, 2]),
    "batch_size": st.sampled_from([8, 32]),
    "base": st.sampled_from([None, "good"]),
}
TRAIN_BAD = {
    "data": st.sampled_from(["nan", "empty", "flat", "text"]),
    "interpolant": st.sampled_from(["cubic", None, 3]),
    "epochs": st.sampled_from([0, -1, 2.5, "2"]),
    "batch_size": st.sampled_from([0, -4, 1.5]),
    "base": st.sampled_from(["wide", "nan"]),
}
BASES = {None: None, "good": torch.rand(16, 2), "wide": torch.rand(16, 3),
         "nan": torch.full((16, 2), NAN)}  # fmt: skip


@settings(max_examples=examples(40))
@given(drawn=sweep(TRAIN_GOOD, TRAIN_BAD))
def test_train_velocity(drawn):
    kw, culprit = drawn

    def call():
        torch.manual_seed(0)
        return train_velocity(DATA[kw["data"]], kw["interpolant"], ScoreMLP(2, hidden=8),
                              ScoreMLP(2, hidden=8), base=BASES[kw["base"]],
                              epochs=kw["epochs"], batch_size=kw["batch_size"],
                              verbose=False)  # fmt: skip

    def check(out):
        model, history = out
        assert len(history.train_loss) == kw["epochs"]
        assert all(math.isfinite(v) for v in history.train_loss), "non-finite loss"
        v = model.velocity(torch.zeros(3, 2), torch.full((3,), 0.5))
        assert v.shape == (3, 2) and bool(torch.isfinite(v).all())

    names = None if culprit is None else (culprit,)
    case("diffusion.train_velocity", call, names, check, info=(kw, culprit))


_MODEL, _ = train_velocity(DATA["good"], epochs=1, verbose=False)

SAMPLE_GOOD = {
    "shape": st.sampled_from([(4, 2), (1, 2)]),
    "eps": st.sampled_from([0.0, 0.3, "schedule"]),
    "steps": st.sampled_from([1, 5]),
    "t_end": st.sampled_from([1.0, 0.5]),
}
SAMPLE_BAD = {
    "shape": st.sampled_from([(0, 2), (4, 3), (2,), "4"]),
    "eps": st.sampled_from([-1.0, NAN, "x", True]),
    "steps": st.sampled_from([0, -3, 2.5, "5"]),
    "t_end": st.sampled_from([0.0, -1.0, 1.5, NAN]),
}


@settings(max_examples=examples(40))
@given(drawn=sweep(SAMPLE_GOOD, SAMPLE_BAD))
def test_sample_flow(drawn):
    kw, culprit = drawn
    eps = (lambda t: 0.5 * (1 - t)) if kw["eps"] == "schedule" else kw["eps"]
    t_end = kw["t_end"]
    if culprit != "t_end" and eps not in (0.0,):
        t_end = min(float(t_end), 0.999)  # the score is singular at t = 1 for eps > 0

    def call():
        with torch.no_grad():
            return sample_flow(_MODEL, kw["shape"], eps=eps, steps=kw["steps"], t_end=t_end,
                               generator=torch.Generator().manual_seed(0))  # fmt: skip

    def check(x):
        assert tuple(x.shape) == tuple(kw["shape"])
        assert bool(torch.isfinite(x).all()), "non-finite samples"

    names = None if culprit is None else (culprit,)
    case("diffusion.sample_flow", call, names, check, info=(kw, culprit))


MIX = GaussianMixture.default_2d()


class _Exact:
    def __init__(self, sde):
        self.sde = sde

    def __call__(self, x, t):
        return MIX.score(x, self.sde, t)


SUP_GOOD = {
    "mode": st.sampled_from(["or", "and"]),
    "models": st.just("same"),
    "bias": st.sampled_from([None, "good"]),
    "temperature": st.sampled_from([1.0, 0.5]),
}
SUP_BAD = {
    "mode": st.sampled_from(["xor", None]),
    "models": st.sampled_from(["mixed", "one", "bare"]),
    "bias": st.sampled_from(["long", "nan"]),
    "temperature": st.sampled_from([NAN, "hot"]),
}


@settings(max_examples=examples(30))
@given(drawn=sweep(SUP_GOOD, SUP_BAD))
def test_superpose_with_return_logp(drawn):
    kw, culprit = drawn
    vp = VPSDE()
    models = {
        "same": [_Exact(vp), _Exact(vp)],
        "mixed": [_Exact(vp), _Exact(VESDE())],
        "one": [_Exact(vp)],
        "bare": [lambda x, t: -x, lambda x, t: -x],
    }[kw["models"]]
    bias = {None: None, "good": [0.0, -1.0], "long": [0.0, 0.0, 0.0], "nan": [NAN, 0.0]}
    bias = bias[kw["bias"]]

    def call():
        score = superpose(models, kw["mode"], temperature=kw["temperature"], bias=bias)
        return sample(score, vp, (8, 2), method="euler", steps=20, return_logp=True,
                      dtype=torch.float64, generator=torch.Generator().manual_seed(0))  # fmt: skip

    def check(out):
        x, logp = out
        assert x.shape == (8, 2) and logp.shape == (8,)
        assert bool(torch.isfinite(x).all()) and bool(torch.isfinite(logp).all())

    names = None if culprit is None else (culprit,)
    case("diffusion.superpose", call, names, check, info=(kw, culprit))
