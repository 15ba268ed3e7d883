"""SuperDiff's superposition of *trained* score models (issue 17): OR of two models trained
on disjoint halves of a Gaussian mixture against the whole mixture, and AND of two models
trained on overlapping Gaussians against their exact product.

    python benchmarks/diffusion_superpose.py [--epochs 60]

OR: MMD^2 of 2,000 samples to the whole mixture, beside the noise floor (two independent
exact samples) and a model trained on the whole mixture. AND: mean ``log q1 + log q2`` of the
samples beside its expectation under the exact (normalised) product and beside OR's samples.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import markdown, write

from neuralsde.diffusion import (
    VPSDE,
    GaussianMixture,
    ScoreMLP,
    mmd2,
    noise_floor,
    sample,
    train_score,
)
from neuralsde.diffusion.density import superpose

N = 2000


def train(gm: GaussianMixture, sde, epochs: int, seed: int):
    torch.manual_seed(seed)
    data = gm.sample(8192, torch.Generator().manual_seed(seed)).float()
    model, _ = train_score(
        data,
        sde,
        ScoreMLP(2, hidden=128),
        epochs=epochs,
        batch_size=256,
        generator=torch.Generator().manual_seed(seed),
        verbose=False,
    )
    return model


def draw(score, sde, seed=1):
    return sample(score, sde, (N, 2), method="euler", steps=500,
                  generator=torch.Generator().manual_seed(seed)).double()  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=60)
    args = ap.parse_args()
    sde = VPSDE()
    start = time.perf_counter()

    gm = GaussianMixture.default_2d()
    w = gm.weights
    half_a = GaussianMixture(w[:2] / w[:2].sum(), gm.means[:2], gm.covs[:2])
    half_b = GaussianMixture(w[2:] / w[2:].sum(), gm.means[2:], gm.covs[2:])
    log_w = torch.log(torch.stack([w[:2].sum(), w[2:].sum()]))
    model_a, model_b = train(half_a, sde, args.epochs, 0), train(half_b, sde, args.epochs, 1)
    model_all = train(gm, sde, args.epochs, 2)
    ref = gm.sample(N, torch.Generator().manual_seed(9))
    floor, spread = noise_floor(gm.sample, n=N, repeats=10)
    or_rows = {
        "OR of the two half models": draw(superpose([model_a, model_b], "or", bias=log_w), sde),
        "model trained on the whole mixture": draw(model_all, sde),
        "half model A alone": draw(model_a, sde),
    }
    or_mmd = {k: float(mmd2(v, ref)) for k, v in or_rows.items()}

    cov = [[0.5, 0.0], [0.0, 0.5]]
    q1 = GaussianMixture([1.0], [[-1.0, 0.0]], [cov])
    q2 = GaussianMixture([1.0], [[1.0, 0.0]], [cov])
    product = GaussianMixture([1.0], [[0.0, 0.0]], [[[0.25, 0.0], [0.0, 0.25]]])
    m1, m2 = train(q1, sde, args.epochs, 3), train(q2, sde, args.epochs, 4)

    def both(x):
        return float((q1.log_prob(x) + q2.log_prob(x)).mean())

    and_rows = {
        "AND of the two models": both(draw(superpose([m1, m2], "and"), sde)),
        "OR of the two models": both(draw(superpose([m1, m2], "or"), sde)),
        "exact product N(0, I/4)": both(product.sample(20_000, torch.Generator().manual_seed(5))),
    }
    wall = time.perf_counter() - start

    md = markdown(["OR: samples", "MMD^2 to the whole mixture"],
                  [[k, f"{v:.4f}"] for k, v in or_mmd.items()])  # fmt: skip
    md += f"\n\nNoise floor: {floor:.4f} +- {spread:.4f} (mean +- std of 10 exact pairs).\n\n"
    md += markdown(["AND: samples", "mean log q1 + log q2"],
                   [[k, f"{v:.2f}"] for k, v in and_rows.items()])  # fmt: skip
    md += (
        f"\n\nScoreMLP(2, hidden=128), {args.epochs} epochs on 8,192 samples each; Euler-"
        f"Maruyama, 500 steps, 2,000 samples; {wall:.0f} s in all.\n"
    )
    write(
        "diffusion_superpose",
        {
            "or_mmd2": or_mmd,
            "noise_floor": [floor, spread],
            "and_log_product": and_rows,
            "epochs": args.epochs,
        },
        md,
    )


if __name__ == "__main__":
    main()
