"""Fuzzing ``sample`` and ``log_likelihood`` with the exact score of a Gaussian mixture,
scores of the wrong shape or size, and every argument drawn from good and bad values."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde.diffusion import VESDE, VPSDE, SubVPSDE, log_likelihood, sample
from neuralsde.diffusion.sampling import METHODS
from neuralsde.diffusion.toy import GaussianMixture

from .harness import case, examples, sweep

NAN = float("nan")
MIXTURE = GaussianMixture.default_2d()
SDES = {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE(sigma_max=5.0)}


def _score(kind, sde):
    exact = MIXTURE.score_fn(sde)
    if kind == "exact":
        return exact
    if kind == "narrow":  # (B, 1) for (B, 2) data: must not broadcast
        return lambda x, t: exact(x, t)[:, :1]
    if kind == "huge":
        return lambda x, t: exact(x, t) * 1e30
    if kind == "nan":
        return lambda x, t: torch.full_like(x, NAN)
    return lambda x, t: exact(x, t).detach()  # no gradient path to x


GOOD = {
    "score": st.just("exact"),
    "sde": st.sampled_from(sorted(SDES)),
    "method": st.sampled_from(METHODS),
    "steps": st.sampled_from([None, 4, 6]),
    "shape": st.sampled_from([(4, 2), (1, 2)]),
    "eps": st.sampled_from([None, 1e-3]),
    "schedule": st.sampled_from([None, "karras", "logsnr", "uniform"]),
    "generator": st.just("gen"),
}
BAD = {
    "score": st.sampled_from(["narrow", "huge", "nan"]),
    "method": st.sampled_from(["bogus", None]),
    "steps": st.sampled_from([0, -2, 2.5, True, "5"]),
    "shape": st.sampled_from([(0, 2), (2,), (3, 3), "4", (4, -2)]),
    "eps": st.sampled_from([0.0, -1.0, NAN, 2.0]),
    "schedule": st.sampled_from(["bogus", torch.tensor([0.5, 1.0])]),
    "generator": st.sampled_from([5, "seed"]),
}
NAMES = {"score": ("score",), "shape": ("shape",)}


@settings(max_examples=examples(70))
@given(drawn=sweep(GOOD, BAD))
def test_sample(drawn):
    kw, culprit = drawn
    forward = SDES[kw["sde"]]
    gen = torch.Generator().manual_seed(1) if kw["generator"] == "gen" else kw["generator"]
    shape = kw["shape"]

    def call():
        return sample(_score(kw["score"], forward), forward, shape, method=kw["method"],
                      steps=kw["steps"], eps=kw["eps"], schedule=kw["schedule"], generator=gen,
                      dtype=torch.float64)  # fmt: skip

    def check(x):
        assert tuple(x.shape) == tuple(shape), f"shape {tuple(x.shape)} for {shape}"
        assert bool(torch.isfinite(x).all()), "non-finite samples returned"

    names = None if culprit is None else NAMES.get(culprit, (culprit,))
    case("diffusion.sample", call, names, check, info=(kw, culprit))


LL_GOOD = {
    "score": st.just("exact"),
    "sde": st.sampled_from(sorted(SDES)),
    "x": st.just("good"),
    "divergence": st.sampled_from(["exact", "hutchinson"]),
    "steps": st.sampled_from([8, None]),
    "eps": st.sampled_from([None, 1e-3]),
}
LL_BAD = {
    "score": st.sampled_from(["narrow", "nan", "detached"]),
    "x": st.sampled_from(["nan", "1d", "empty", "int", "list"]),
    "divergence": st.sampled_from(["bogus", None]),
    "steps": st.sampled_from([0, 2.5, True, -1]),
    "eps": st.sampled_from([0.0, NAN, -1.0]),
}


@settings(max_examples=examples(30))
@given(drawn=sweep(LL_GOOD, LL_BAD))
def test_log_likelihood(drawn):
    kw, culprit = drawn
    forward = SDES[kw["sde"]]
    x = MIXTURE.sample(3, torch.Generator().manual_seed(2))
    x = {"nan": x.clone().fill_(NAN), "1d": x[:, 0], "empty": x[:0], "int": x.long(),
         "list": x.tolist()}.get(kw["x"], x)  # fmt: skip

    def call():
        gen = torch.Generator().manual_seed(0)
        return log_likelihood(_score(kw["score"], forward), forward, x, method="heun",
                              divergence=kw["divergence"], steps=kw["steps"], eps=kw["eps"],
                              generator=gen)  # fmt: skip

    def check(logp):
        assert logp.shape == (len(x),), f"shape {tuple(logp.shape)}"
        assert bool(torch.isfinite(logp).all()), "non-finite log-density"
        if culprit is None and kw["divergence"] == "exact" and kw["steps"] is None:
            exact = MIXTURE.log_prob(x)
            assert float((logp - exact).abs().max()) < 0.5, f"{logp} vs exact {exact}"

    names = None if culprit is None else NAMES.get(culprit, (culprit,))
    case("diffusion.log_likelihood", call, names, check)
