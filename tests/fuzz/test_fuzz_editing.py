"""Fuzzing SDEdit (``edit``) and exact inversion (``invert`` + replay) with the exact score of
a Gaussian mixture, every argument drawn from good and bad values (issue 16's entry points)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralsde.diffusion import VPSDE, sample
from neuralsde.diffusion.editing import edit
from neuralsde.diffusion.inversion import invert
from neuralsde.diffusion.toy import GaussianMixture

from .harness import case, examples, sweep

NAN = float("nan")
MIX = GaussianMixture.default_2d()
SDE = VPSDE()
SCORE = MIX.score_fn(SDE)
GUIDES = {
    "good": torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64),
    "nan": torch.tensor([[NAN, 0.0]], dtype=torch.float64),
    "empty": torch.zeros(0, 2, dtype=torch.float64),
    "flat": torch.zeros(2, dtype=torch.float64),
    "text": "guide",
}

EDIT_GOOD = {
    "guide": st.just("good"),
    "t0": st.sampled_from([0.1, 0.5, 1.0]),
    "mask": st.sampled_from([None, "event", "full"]),
    "repeats": st.sampled_from([1, 3]),
    "steps": st.sampled_from([3, 10]),
}
EDIT_BAD = {
    "guide": st.sampled_from(["nan", "empty", "flat", "text"]),
    "t0": st.sampled_from([0.0, -0.2, 1.5, NAN, True, "0.5"]),
    "mask": st.sampled_from(["wide", "float", "text"]),
    "repeats": st.sampled_from([0, -1, 1.5, True]),
    "steps": st.sampled_from([0, -3, 2.5, "4"]),
}
MASKS = {
    None: None,
    "event": torch.tensor([True, False]),
    "full": torch.tensor([[True, False], [False, True]]),
    "wide": torch.ones(3, dtype=torch.bool),
    "float": torch.ones(2),
    "text": "mask",
}


@settings(max_examples=examples(40))
@given(drawn=sweep(EDIT_GOOD, EDIT_BAD))
def test_edit(drawn):
    kw, culprit = drawn
    guide = GUIDES[kw["guide"]]

    def call():
        return edit(SCORE, SDE, guide, kw["t0"], mask=MASKS[kw["mask"]], repeats=kw["repeats"],
                    steps=kw["steps"], generator=torch.Generator().manual_seed(0))  # fmt: skip

    def check(out):
        assert tuple(out.shape) == (kw["repeats"], *guide.shape)
        assert bool(torch.isfinite(out).all()), "non-finite edits"
        mask = MASKS[kw["mask"]]
        if mask is not None:  # the kept coordinates are the guide's
            keep = ~mask.expand(guide.shape)
            assert float((out - guide)[:, keep].abs().max()) < 1e-6

    names = None if culprit is None else (culprit,)
    case("diffusion.edit", call, names, check, info=(kw, culprit))


INV_GOOD = {
    "x0": st.just("good"),
    "method": st.sampled_from(["reversible_heun", "reversible_heun_sde", "rex", "rex_sde", "ddim"]),
    "steps": st.sampled_from([2, 8]),
    "schedule": st.sampled_from(["logsnr", "uniform", "karras"]),
}
INV_BAD = {
    "x0": st.sampled_from(["nan", "empty", "flat", "text"]),
    "method": st.sampled_from(["euler", "dpmpp_2m", None]),
    "steps": st.sampled_from([0, -1, 2.5]),
    "schedule": st.sampled_from(["bogus", torch.tensor([0.5, 0.9])]),
}


@settings(max_examples=examples(40))
@given(drawn=sweep(INV_GOOD, INV_BAD))
def test_invert_and_replay(drawn):
    kw, culprit = drawn
    x0 = GUIDES[kw["x0"]]

    def call():
        inv = invert(SCORE, SDE, x0, method=kw["method"], steps=kw["steps"],
                     schedule=kw["schedule"])  # fmt: skip
        return inv, sample(SCORE, SDE, tuple(x0.shape), x_T=inv)

    def check(out):
        inv, back = out
        assert back.shape == x0.shape and bool(torch.isfinite(back).all())
        if kw["method"] != "ddim":
            err = float((back - x0).norm() / x0.norm())
            assert err < 1e-9, f"round trip {err:.2e}"

    names = None if culprit is None else (culprit,)
    case("diffusion.invert", call, names, check, info=(kw, culprit))
