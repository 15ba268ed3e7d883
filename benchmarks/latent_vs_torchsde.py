"""Per-iteration training time of the same latent SDE in neuralsde and in torchsde.

The torchsde side follows the structure of torchsde's ``examples/latent_sde_lorenz.py``: a GRU
encoder over the reversed observations, posterior drift ``f(t, z, ctx)`` with the context looked
up by ``searchsorted``, prior drift ``h(t, z)``, per-coordinate diffusion nets with a sigmoid,
a linear projector, and ``torchsde.sdeint(..., logqp=True, method="euler", dt=1e-2)``. Two more
torchsde variants isolate the solver: one with neuralsde's vectorised diagonal diffusion, one that
also reads the context from pieces unbound once (``ctx.unbind(0)``) instead of ``ctx[i]`` at every
step (whose backward fills a full-size gradient per step), i.e. the same model code as neuralsde.
The neuralsde side is :class:`neuralsde.models.latent.LatentSDE` with the same sizes, trained by
``LatentSDE.elbo`` (path KL through ``neuralsde.core.logqp``), with ``bridge=False``: the plain
Li et al. posterior of the example (the default posterior also sees the next observation), and
``snap=True`` (output times on the step grid, as torchsde interpolates between its steps).

Run: ``python benchmarks/latent_vs_torchsde.py [--iters 10 --batch 32 128 256 1024]``; writes
``benchmarks/results/latent_vs_torchsde.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path

import torch
import torchsde
from _common import interleaved_times
from torch import nn

from neuralsde.datasets import simulate_lorenz
from neuralsde.models.latent import DiagonalDiffusion, LatentSDE, _kl_normal, _mlp

RESULTS = Path(__file__).parent / "results"


class TorchsdeLatent(nn.Module):
    """Latent SDE in torchsde's example style: ``f``, ``h``, ``g`` and ``sdeint(logqp=True)``."""

    sde_type, noise_type = "ito", "diagonal"

    def __init__(self, data_dim, latent_dim, context_dim, hidden, vectorised_g=False,
                 unbind_ctx=False):  # fmt: skip
        super().__init__()
        self.unbind_ctx = unbind_ctx
        self.gru = nn.GRU(data_dim, hidden)
        self.ctx_out = nn.Linear(hidden, context_dim)
        self.qz0 = nn.Linear(context_dim, 2 * latent_dim)
        self.f_net = _mlp(latent_dim + context_dim, hidden, latent_dim)
        self.h_net = _mlp(latent_dim, hidden, latent_dim)
        if vectorised_g:
            self.g_vec = DiagonalDiffusion(latent_dim)
        else:  # one small net per coordinate, as in the example
            self.g_nets = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(1, hidden), nn.Softplus(), nn.Linear(hidden, 1), nn.Sigmoid()
                )  # fmt: skip
                for _ in range(latent_dim)
            )
        self.vectorised_g = vectorised_g
        self.projector = nn.Linear(latent_dim, data_dim)
        self.pz0_mean = nn.Parameter(torch.zeros(1, latent_dim))
        self.pz0_logstd = nn.Parameter(torch.zeros(1, latent_dim))
        self._ctx = None

    def f(self, t, y):
        ts, ctx = self._ctx
        i = min(int(torch.searchsorted(ts, t, right=True)), len(ts) - 1)
        return self.f_net(torch.cat((y, ctx[i]), dim=1))

    def h(self, t, y):
        return self.h_net(y)

    def g(self, t, y):
        if self.vectorised_g:
            return self.g_vec(y)
        ys = torch.split(y, 1, dim=1)
        return torch.cat([net(yi) for net, yi in zip(self.g_nets, ys, strict=True)], dim=1)

    def loss(self, xs, ts, noise_std=0.1):
        out, _ = self.gru(xs.flip(0))
        ctx = self.ctx_out(out).flip(0)
        self._ctx = (ts, ctx.unbind(0) if self.unbind_ctx else ctx)
        mean, logstd = self.qz0(ctx[0]).chunk(2, dim=1)
        z0 = mean + logstd.exp() * torch.randn_like(mean)
        zs, log_ratio = torchsde.sdeint(self, z0, ts, dt=1e-2, logqp=True, method="euler")
        x_hat = self.projector(zs)
        log_pxs = torch.distributions.Normal(x_hat, noise_std).log_prob(xs).sum((0, 2)).mean()
        kl0 = _kl_normal(mean, logstd, self.pz0_mean, self.pz0_logstd).sum(1).mean()
        return -log_pxs + kl0 + log_ratio.sum(0).mean()


def time_interleaved(steps: dict, iters: int, warmup: int = 2) -> dict:
    """Median/min/mean seconds per call of each step, timed round-robin."""
    out = {}
    for name, ts in interleaved_times(steps, iters, warmup).items():
        out[name] = {"median_s": ts[len(ts) // 2], "min_s": ts[0], "mean_s": sum(ts) / len(ts)}
    return out


def run_one(batch: int, args) -> dict:
    """Time every implementation at one batch size; returns results and speed-ups."""
    torch.manual_seed(0)
    ds = simulate_lorenz(batch, args.times, t_end=1.0, seed=0)
    x = torch.tensor(ds["values"].values, dtype=torch.float32)
    x = (x - x.mean((0, 1))) / x.std((0, 1))
    t = torch.tensor(ds["time"].values, dtype=torch.float32)
    t = (t - t[0]) / (t[-1] - t[0])  # [0, 1], dt = 1e-2 -> 100 steps
    B, L, C = x.shape
    sizes = (C, args.latent, args.context, args.hidden)

    steps = {}
    xs_first = x.transpose(0, 1)  # (time, batch, channel), the torchsde layout
    variants = {
        "torchsde_example": {},
        "torchsde_vectorised_g": {"vectorised_g": True},
        "torchsde_same_model_code": {"vectorised_g": True, "unbind_ctx": True},
    }
    for name, kw in variants.items():
        model = TorchsdeLatent(*sizes, **kw)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, opt=opt, xs=xs_first):
            opt.zero_grad()
            model.loss(xs, t).backward()
            opt.step()

        steps[name] = step

    # snap=True: observation times rounded to the 100 solver steps, as torchsde steps at dt and
    # interpolates its outputs between steps; exact times would add a step per observation.
    model = LatentSDE(*sizes, obs_std=0.1, dt=1e-2, method="euler", bridge=False, snap=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = t.expand(B, L)

    def step_ns():
        opt.zero_grad()
        model.elbo(times, x)["loss"].backward()
        opt.step()

    steps["neuralsde"] = step_ns
    results = time_interleaved(steps, args.iters)
    ns = results["neuralsde"]["median_s"]
    speedup = {name: r["median_s"] / ns for name, r in results.items() if name != "neuralsde"}
    print(
        f"batch {B}: " + ", ".join(f"{n} {r['median_s'] * 1e3:.0f} ms" for n, r in results.items())
    )
    print(f"batch {B}: speed-up of neuralsde: "
          + ", ".join(f"vs {n} {v:.2f}x" for n, v in speedup.items()))  # fmt: skip
    return {"batch": B, "results": results, "speedup": speedup}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128, 256, 1024])
    p.add_argument("--times", type=int, default=100)
    p.add_argument("--latent", type=int, default=4)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = [run_one(b, args) for b in args.batch]
    record = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "steps_per_solve": math.ceil(1.0 / 1e-2),
        "runs": runs,
        "torch": torch.__version__,
        "torchsde": getattr(torchsde, "__version__", "?"),
        "machine": platform.platform(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latent_vs_torchsde.json").write_text(json.dumps(record, indent=2))
    names = list(runs[0]["results"])
    rows = [
        "| batch | " + " | ".join(f"{n} ms" for n in names) + " | speed-up vs example | "
        "vs vectorised g | vs same model code |",
        "|---" * (len(names) + 4) + "|",
    ]
    for r in runs:
        res, sp = r["results"], r["speedup"]
        rows.append(
            f"| {r['batch']} | " + " | ".join(f"{res[n]['median_s'] * 1e3:.0f}" for n in names)
            + f" | {sp['torchsde_example']:.2f}x | {sp['torchsde_vectorised_g']:.2f}x | "
            f"{sp['torchsde_same_model_code']:.2f}x |"
        )  # fmt: skip
    header = (
        f"Median per-iteration time (forward + backward + Adam), timed round-robin so every "
        f"implementation sees the same machine load. Lorenz data, {args.times} observation "
        f"times, 100 Euler steps (dt = 1e-2), latent {args.latent}, context {args.context}, "
        f"hidden {args.hidden}, {args.threads} CPU thread(s), {args.iters} timed iterations.\n\n"
    )
    (args.out / "latent_vs_torchsde.md").write_text(header + "\n".join(rows) + "\n")
    return record


if __name__ == "__main__":
    main()
