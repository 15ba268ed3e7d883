"""Diffusion samplers: quality against the number of score evaluations (NFE), side by side
with k-diffusion, for every sampler and schedule.

1. Exact score: a 2-D Gaussian mixture under VP, whose score is known in closed form. MMD^2
   and sliced Wasserstein to a fresh sample of the mixture, at 5, 10, 20 and 50 NFE, for
   every sampler x schedule; Euler at 1,000 steps is the reference and the two-sample noise
   floor of the MMD^2 (mean + 3 sd over pairs of independent mixture samples) the target.
2. Adaptive: Gotta Go Fast's NFE against Euler's at equal MMD^2.
3. Trained scores: the same table with a score MLP trained on two-moons and on the OU
   trajectory windows of ``diffusion_trajectories.py`` (signature MMD^2 for windows).
4. Speed of the loop: ``dpmpp_2m`` against k-diffusion's ``sample_dpmpp_2m`` at batch 4,096
   in 2-D on the trained two-moons network, time per step minus the network's own time.

    python benchmarks/diffusion_samplers.py [--quick]

Writes benchmarks/results/diffusion_samplers.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _peers import k_sampling  # noqa: E402
from diffusion_trajectories import LENGTH, ou_windows, sig_mmd  # noqa: E402

from neuralsde.diffusion import (  # noqa: E402
    VPSDE,
    GaussianMixture,
    ScoreMLP,
    ScoreModel,
    mmd2,
    sliced_wasserstein,
    train_score,
    two_moons,
)
from neuralsde.diffusion.reverse import tweedie  # noqa: E402
from neuralsde.diffusion.sampling import SAMPLERS, sample, sample_nfe  # noqa: E402
from neuralsde.diffusion.schedules import NAMES as SCHEDULES  # noqa: E402
from neuralsde.diffusion.schedules import edm_sigma, schedule_times  # noqa: E402

OUT = HERE / "results"
NFES = (5, 10, 20, 50)
GRID = [m for m in SAMPLERS if m != "adaptive"]
DIVERGED = 50.0  # a sample this large (the data are of order 1) counts as a diverged run
SECOND_ORDER = ("ode", "heun_edm", "dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "dpmpp_3m_sde",
                "sa_solver", "er_sde", "restart")  # fmt: skip


def steps_for(method, nfe):
    """The most schedule intervals whose run costs at most ``nfe`` evaluations (None: none)."""
    best = None
    for n in range(1, nfe + 1):
        if sample_nfe(method, n) <= nfe:
            best = n
    return best


# "exponential" gives the same knots as "logsnr" (tests/test_diffusion_samplers.py)
GRID_SCHEDULES = ("uniform", "logsnr", "karras")


def run_grid(score, sde, n, seeds, target_fn, metrics, schedules=GRID_SCHEDULES, shape=(2,)):
    rows = []
    for method in GRID:
        for schedule in schedules:
            for nfe in NFES:
                steps = steps_for(method, nfe)
                if steps is None:
                    continue
                vals, used, secs, diverged = {k: [] for k in metrics}, None, 0.0, False
                for seed in seeds:
                    t0 = time.time()
                    with torch.no_grad():
                        x, info = sample(score, sde, (n, *shape), method=method, steps=steps,
                                         schedule=schedule, return_info=True,
                                         generator=torch.Generator().manual_seed(seed))  # fmt: skip
                    secs += time.time() - t0
                    used = info["nfe"]
                    if not bool(torch.isfinite(x).all()) or float(x.abs().max()) > DIVERGED:
                        diverged = True
                        break
                    target = target_fn(seed)
                    for k, fn in metrics.items():
                        vals[k].append(fn(x, target))
                row = {"method": method, "schedule": schedule, "nfe_budget": nfe,
                       "steps": steps, "nfe": used, "seconds": secs / len(seeds),
                       "diverged": diverged}  # fmt: skip
                for k, v in vals.items():
                    row[k] = float("nan") if diverged else float(np.mean(v))
                    row[k + "_sd"] = float("nan") if diverged else float(np.std(v))
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def reference(score, sde, n, seeds, target_fn, metrics, shape=(2,)):
    out = {k: [] for k in metrics}
    for seed in seeds:
        with torch.no_grad():
            x = sample(score, sde, (n, *shape), method="euler", steps=1000,
                       generator=torch.Generator().manual_seed(seed))  # fmt: skip
        for k, fn in metrics.items():
            out[k].append(fn(x, target_fn(seed)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def floor_of(sampler, stat, n, seeds, repeats=10):
    """The statistic between independent target samples: mean, sd, and the limit for a mean
    over ``len(seeds)`` runs, ``mean + 3 sd / sqrt(len(seeds))``."""
    vals = [float(stat(sampler(n, 1000 + 2 * r), sampler(n, 1001 + 2 * r))) for r in range(repeats)]
    return {"mean": float(np.mean(vals)), "sd": float(np.std(vals)),
            "limit": float(np.mean(vals) + 3 * np.std(vals) / math.sqrt(len(seeds)))}  # fmt: skip


class MultiScaleGaussian:
    """Data ``N(0, diag(lam))`` in ``d`` dimensions with standard deviations from 0.01 to 1 (a
    multi-scale target like images, where Euler needs many steps): exact score, and the
    error of a sample of ``p_eps`` (no denoising step: Tweedie's shrinkage would confound
    it) as the mean |log(sample variance / (alpha^2 lam + sigma^2))| over the coordinates."""

    def __init__(self, d=64):
        self.lam = torch.logspace(-4, 0, d, dtype=torch.float64)

    def score_fn(self, sde):
        def score(x, t):
            t = t.to(torch.float64)
            var = sde.alpha(t)[:, None] ** 2 * self.lam + sde.sigma(t)[:, None] ** 2
            return (-x.double() / var).to(x.dtype)

        return score

    def variances(self, sde):
        t = torch.tensor(sde.eps, dtype=torch.float64)
        return sde.alpha(t) ** 2 * self.lam + sde.sigma(t) ** 2

    def error(self, x, sde):
        return float(torch.log(x.double().var(0) / self.variances(sde)).abs().mean())


def adaptive_vs_euler(sde, n, seeds):
    """Euler's error curve against steps and adaptive runs at three tolerance settings on
    :class:`MultiScaleGaussian`; the Euler NFE that reaches each adaptive error (log-log
    interpolation)."""
    target = MultiScaleGaussian()
    score = target.score_fn(sde)

    def run(method, **kw):
        vals, nfe = [], []
        for seed in seeds:
            with torch.no_grad():
                x, info = sample(score, sde, (n, len(target.lam)), method=method, denoise=False,
                                 return_info=True, generator=torch.Generator().manual_seed(seed),
                                 **kw)  # fmt: skip
            vals.append(target.error(x, sde))
            nfe.append(info["nfe"])
        return float(np.mean(vals)), float(np.mean(nfe))

    euler = [(s, *run("euler", steps=s)) for s in (50, 100, 200, 500, 1000, 2000)]
    std = target.variances(sde).sqrt()
    floor = float(np.mean([target.error(torch.randn(n, len(target.lam), dtype=torch.float64,
                                                     generator=torch.Generator().manual_seed(s))
                                        * std, sde) for s in seeds]))  # fmt: skip
    out = {"target": "N(0, diag(logspace(-4, 0, 64)))", "metric": "mean |log var ratio|",
           "floor": floor, "euler": [{"steps": s, "error": m, "nfe": f} for s, m, f in euler],
           "adaptive": []}  # fmt: skip
    for rtol, atol in ((0.1, 0.0156), (0.05, 0.0078), (0.02, 0.003)):
        m, f = run("adaptive", rtol=rtol, atol=atol)
        out["adaptive"].append({"rtol": rtol, "atol": atol, "error": m, "nfe": f,
                                "euler_nfe_at_equal_error": _euler_nfe_at(euler, m)})  # fmt: skip
    return out


def _euler_nfe_at(euler, target):
    """NFE Euler needs to reach error ``target``: log-log interpolation along its decreasing
    curve (None when Euler never gets that low)."""
    pts = [(f, m) for _, m, f in euler]
    if target >= pts[0][1]:
        return pts[0][0]
    for (f0, m0), (f1, m1) in zip(pts, pts[1:], strict=False):
        if m0 >= target >= m1 > 0:
            w = (math.log(target) - math.log(m0)) / (math.log(m1) - math.log(m0))
            return float(math.exp(math.log(f0) + w * (math.log(f1) - math.log(f0))))
    return None


def train_moons(quick):
    sde = VPSDE()
    data = two_moons(20000, generator=torch.Generator().manual_seed(0))
    t0 = time.time()
    model, _ = train_score(data, sde, ScoreMLP(2, hidden=128, depth=4),
                           epochs=8 if quick else 40, batch_size=512, lr=2e-3, ema_decay=0.999,
                           generator=torch.Generator().manual_seed(0), verbose=False)  # fmt: skip
    return model.eval(), time.time() - t0


def train_ou(quick):
    sde = VPSDE()
    train, _ = ou_windows(2000 if quick else 20000, seed=0)
    t0 = time.time()
    model, _ = train_score(train, sde, ScoreMLP((LENGTH, 1), hidden=256, depth=4),
                           epochs=5 if quick else 20, batch_size=256, lr=1e-3, ema_decay=0.999,
                           generator=torch.Generator().manual_seed(0), verbose=False)  # fmt: skip
    return model.eval(), time.time() - t0


def speed_model():
    """The two-moons score MLP's architecture (its time per call does not depend on its
    weights, so the speed check needs no training)."""
    return ScoreModel(ScoreMLP(2, hidden=128, depth=4), VPSDE()).eval()


def loop_speed(model, sde, batch=4096, steps=50, repeats=15):
    """Seconds per step of dpmpp_2m (ours) and k-diffusion's ``sample_dpmpp_2m``, at batch
    4,096 in 2-D, medians of interleaved repeats.

    - ``free``: a model that costs nothing (data N(0, I): score ``-x`` under VP, denoiser
      ``x / (1 + s^2)`` in k-diffusion's variables), so the time *is* the loop's overhead;
    - ``mlp``: the two-moons score MLP, minus its own time per call; k-diffusion gets it
      through the glue a user writes (VP score model -> EDM denoiser).
    """
    kd = k_sampling()
    knots = schedule_times("logsnr", sde, steps)
    levels = torch.cat([edm_sigma(sde, knots), torch.zeros(1, dtype=torch.float64)]).float()
    alpha_T = float(sde.alpha(torch.tensor(sde.T)))
    x_T = torch.randn(batch, 2, generator=torch.Generator().manual_seed(0))

    def glue(x_hat, s_hat, **kw):
        t = sde.t_from_log_snr(-torch.log(s_hat.double())).float()
        a, s = sde.alpha(t)[:, None], sde.sigma(t)[:, None]
        x = a * x_hat
        return tweedie(x, model(x, t), a, s)

    t_in = torch.full((batch,), 0.5)
    runs = {
        "free_ours": lambda: sample(
            lambda x, t: -x, sde, (batch, 2), method="dpmpp_2m", x_T=x_T, schedule=knots
        ),  # fmt: skip
        "free_k_diffusion": lambda: kd.sample_dpmpp_2m(
            lambda x, s, **kw: x / (1 + s[:, None] ** 2), x_T / alpha_T, levels, disable=True
        ),
        "network": lambda: [model(x_T, t_in) for _ in range(steps + 1)],
        "mlp_ours": lambda: sample(
            model, sde, (batch, 2), method="dpmpp_2m", x_T=x_T, schedule=knots
        ),  # fmt: skip
        "mlp_k_diffusion": lambda: kd.sample_dpmpp_2m(
            glue, x_T / alpha_T, levels, disable=True
        ),  # fmt: skip
    }
    times = {k: [] for k in runs}
    with torch.no_grad():
        for fn in runs.values():
            fn()
        for _ in range(repeats):
            for k, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    nfe = steps + 1
    per = {k: float(np.median(v)) / nfe for k, v in times.items()}
    return {
        "batch": batch, "steps": steps, "nfe": nfe, "s_per_step": per,
        "free_ratio": per["free_ours"] / per["free_k_diffusion"],
        "mlp_overhead_ours": per["mlp_ours"] - per["network"],
        "mlp_overhead_k_diffusion": per["mlp_k_diffusion"] - per["network"],
    }  # fmt: skip


def peers_section(res, n, seeds):
    """The peers' samplers on the exact mixture at 10 and 20 NFE, next to ours on the same
    knots: k-diffusion (heun, dpmpp_2m, dpmpp_2m_sde on Karras sigmas; the denoiser in EDM
    variables) and diffusers (DDIM, DPM-Solver++(3M), SA-Solver on the VP SDE's own alphas at
    their discrete timesteps; an epsilon model)."""
    import diffusers
    from _peers import vp_alphas_cumprod

    kd, gm, sde = k_sampling(), GaussianMixture.default_2d(), VPSDE()
    f64, a_T = torch.float64, float(sde.alpha(torch.tensor(sde.T, dtype=torch.float64)))
    abar, betas = vp_alphas_cumprod(sde)

    def x_T(seed):
        return sde.prior_sampling((n, 2), generator=torch.Generator().manual_seed(seed), dtype=f64)

    def target(seed):
        return gm.sample(n, torch.Generator().manual_seed(500 + seed)).float()

    def eps_model(x, k):
        t = torch.full((x.shape[0],), (int(k) + 1) / 1000, dtype=f64)
        return -(1 - abar[int(k)]).sqrt() * gm.score(x.double(), sde, t).to(x.dtype)

    def k_run(fn, steps, seed, **kw):
        knots = schedule_times("karras", sde, steps)
        levels = torch.cat([edm_sigma(sde, knots), torch.zeros(1, dtype=f64)])
        torch.manual_seed(seed)
        return fn(lambda x, s, **_: gm.denoiser(x, s), x_T(seed) / a_T, levels, disable=True,
                  **kw), knots  # fmt: skip

    def d_run(sched, steps, seed, last=False):
        sched.set_timesteps(steps)
        ts = sched.timesteps.long()
        sched.alphas_cumprod = abar
        if hasattr(sched, "sigmas") and not last:
            sched.sigmas = torch.cat(
                [((1 - abar[ts]) / abar[ts]).sqrt(), torch.zeros(1, dtype=f64)]
            )
        x, gen = x_T(seed), torch.Generator().manual_seed(seed)
        for k in ts:
            kw = {"generator": gen} if last else {}
            x = sched.step(eps_model(x, k), int(k), x, **kw).prev_sample
        knots = (ts.double() + 1) / 1000
        return x, (torch.cat([knots, torch.tensor([1e-3], dtype=f64)]) if last else knots)

    peers = {
        "k-diffusion sample_heun": ("heun_edm", lambda st, sd: k_run(kd.sample_heun, st, sd)),
        "k-diffusion sample_dpmpp_2m": (
            "dpmpp_2m", lambda st, sd: k_run(kd.sample_dpmpp_2m, st, sd)),
        "k-diffusion sample_dpmpp_2m_sde": (
            "dpmpp_2m_sde", lambda st, sd: k_run(kd.sample_dpmpp_2m_sde, st, sd)),
        "diffusers DDIMScheduler": ("ddim", lambda st, sd: d_run(diffusers.DDIMScheduler(
            trained_betas=betas.numpy(), clip_sample=False, timestep_spacing="trailing"), st, sd)),
        "diffusers DPMSolverMultistep (3)": ("dpmpp_3m, d2_term='halved'", lambda st, sd: d_run(
            diffusers.DPMSolverMultistepScheduler(trained_betas=betas.numpy(), solver_order=3,
                                                  lower_order_final=False), st, sd)),
        "diffusers SASolverScheduler": ("sa_solver", lambda st, sd: d_run(
            diffusers.SASolverScheduler(trained_betas=betas.numpy(), predictor_order=3,
                                        corrector_order=4), st, sd, last=True)),
    }  # fmt: skip
    rows = []
    for name, (ours, run) in peers.items():
        for nfe in (10, 20):
            peer_steps = {"heun_edm": steps_for("heun_edm", nfe)}.get(ours, nfe - 1)
            if name.startswith("diffusers"):
                peer_steps = nfe  # one evaluation per timestep, no denoising step
            theirs, mine = [], []
            for seed in seeds:
                x, knots = run(peer_steps, seed)
                theirs.append(float(mmd2(x.float(), target(seed))))
                last = name.endswith("SASolverScheduler")
                # "dpmpp_3m, d2_term='halved'": diffusers' third-order term (exponential.py)
                method, _, opt = ours.partition(", d2_term=")
                y = sample(gm.score_fn(sde), sde, (n, 2), method=method, schedule=knots,
                           x_T=x_T(seed), dtype=f64, denoise=not last,
                           options={"d2_term": opt.strip("'")} if opt else None,
                           generator=torch.Generator().manual_seed(seed))  # fmt: skip
                mine.append(float(mmd2(y.float(), target(seed))))
            rows.append(
                {
                    "peer": name,
                    "ours": ours,
                    "nfe_budget": nfe,
                    "peer_mmd2": float(np.mean(theirs)),
                    "ours_mmd2": float(np.mean(mine)),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    res["peers"] = rows


def ou_section(res, quick):
    """Train the OU-window score and run the grid on it (signature MMD^2, 200 windows)."""
    sde = VPSDE()
    ou, ou_s = train_ou(quick)
    held = {s: ou_windows(200, seed=900 + s)[0] for s in range(12)}
    res["ou_train_seconds"] = ou_s
    vals = [sig_mmd(held[2 * r], held[2 * r + 1]) for r in range(5)]
    res["ou_floor"] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals)),
                       "limit": float(np.mean(vals) + 3 * np.std(vals))}  # fmt: skip
    ou_metrics = {"sig_mmd2": lambda x, y: sig_mmd(x, y)}
    res["ou_reference_euler_1000"] = reference(ou, sde, 200, [0], lambda s: held[10 + s],
                                               ou_metrics, shape=(LENGTH, 1))  # fmt: skip
    res["ou"] = run_grid(ou, sde, 200, [0], lambda s: held[10 + s], ou_metrics,
                         schedules=("logsnr", "karras"), shape=(LENGTH, 1))  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=["speed", "ou", "peers"],
                   help="re-measure one section only, into the stored results")  # fmt: skip
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    suffix = "_quick" if args.quick else ""
    if args.only:
        res = json.loads((OUT / f"diffusion_samplers{suffix}.json").read_text())
        if args.only == "speed":
            res["speed"] = loop_speed(speed_model(), VPSDE())
        elif args.only == "peers":
            peers_section(res, res["n"], res["seeds"])
        else:
            ou_section(res, args.quick)
        (OUT / f"diffusion_samplers{suffix}.json").write_text(json.dumps(res, indent=1))
        (OUT / f"diffusion_samplers{suffix}.md").write_text(report(res))
        return
    n = 1000 if args.quick else 2000
    seeds = [0] if args.quick else [0, 1, 2]
    res = {"n": n, "seeds": seeds, "nfe_budgets": NFES}

    # 1. exact score
    gm, sde = GaussianMixture.default_2d(), VPSDE()

    def gm_target(seed):
        return gm.sample(n, torch.Generator().manual_seed(500 + seed)).float()

    def gm_sampler(m, s):
        return gm.sample(m, torch.Generator().manual_seed(s)).float()

    metrics = {"mmd2": lambda x, y: float(mmd2(x.float(), y)),
               "sw": lambda x, y: float(sliced_wasserstein(x.float(), y))}  # fmt: skip
    score = gm.score_fn(sde)
    res["exact_floor"] = floor_of(gm_sampler, mmd2, n, seeds)
    res["exact_reference_euler_1000"] = reference(score, sde, n, seeds, gm_target, metrics)
    res["exact"] = run_grid(score, sde, n, seeds, gm_target, metrics)
    peers_section(res, n, seeds)
    # 2. adaptive against Euler
    res["adaptive"] = adaptive_vs_euler(sde, n, seeds)
    print(json.dumps(res["adaptive"]), flush=True)
    res["speed"] = None

    # 3. trained scores
    moons, moons_s = train_moons(args.quick)

    def moons_target(seed):
        return two_moons(n, generator=torch.Generator().manual_seed(700 + seed))

    res["moons_train_seconds"] = moons_s

    def moons_sampler(m, s):
        return two_moons(m, generator=torch.Generator().manual_seed(s))

    res["moons_floor"] = floor_of(moons_sampler, mmd2, n, seeds)
    res["moons_reference_euler_1000"] = reference(moons, sde, n, seeds, moons_target, metrics)
    res["moons"] = run_grid(moons, sde, n, seeds, moons_target, metrics)
    ou_section(res, args.quick)

    # 4. loop speed
    res["speed"] = loop_speed(speed_model(), sde)
    print(json.dumps(res["speed"]), flush=True)

    OUT.mkdir(exist_ok=True)
    (OUT / f"diffusion_samplers{suffix}.json").write_text(json.dumps(res, indent=1))
    (OUT / f"diffusion_samplers{suffix}.md").write_text(report(res))
    plot(res, OUT / f"diffusion_samplers{suffix}.png")


def _best(rows, key):
    """Per (method, nfe budget): the row of the best schedule."""
    best = {}
    for r in rows:
        if r.get("diverged") or not math.isfinite(r[key]):
            continue
        k = (r["method"], r["nfe_budget"])
        if k not in best or r[key] < best[k][key]:
            best[k] = r
    return best


def _table(rows, key, floor, title):
    """``floor``: the floor's dict (a value counts as within it when it lies within
    ``limit - mean`` of its mean, on either side: a large negative MMD^2 is a failure too),
    or None for no marking."""
    lines = [f"### {title}", "",
             f"{key} (mean over seeds) at each NFE budget, per sampler and schedule "
             f"(`exponential` gives the same knots as `logsnr`); **bold**: within the noise "
             f"floor ({_band(floor)}). `-`: the sampler needs more evaluations; `diverged`: a "
             f"sample left [-{DIVERGED:g}, {DIVERGED:g}] or was not finite.",
             "", "| sampler | schedule | " + " | ".join(f"NFE {b}" for b in NFES) + " |",
             "|---|---|" + "---|" * len(NFES)]  # fmt: skip
    cells = {(r["method"], r["schedule"], r["nfe_budget"]): r for r in rows}
    scheds = sorted({r["schedule"] for r in rows}, key=list(SCHEDULES).index)
    for method in GRID:
        for sched in scheds:
            out = []
            for b in NFES:
                r = cells.get((method, sched, b))
                if r is None:
                    out.append("-")
                    continue
                if r.get("diverged"):
                    out.append("diverged")
                    continue
                v = f"{r[key]:.2e}"
                within = (
                    floor is not None
                    and abs(r[key] - floor["mean"]) <= floor["limit"] - floor["mean"]
                )
                out.append(f"**{v}**" if within else v)
            lines.append(f"| {method} | {sched} | " + " | ".join(out) + " |")
    return lines


def _band(floor):
    if floor is None:
        return "not marked"
    half = floor["limit"] - floor["mean"]
    return f"{floor['mean'] - half:.2e} to {floor['limit']:.2e}"


def report(res):
    fl = res["exact_floor"]["limit"]
    ex = res["exact"]
    best = _best(ex, "mmd2")
    lines = ["## Diffusion samplers: quality against score evaluations (issue #15)", "",
             f"VP SDE; {res['n']} samples per run, seeds {res['seeds']}; the NFE counts every "
             f"score evaluation, the final denoising step included. Noise floor of MMD^2 "
             f"(for a mean over the seeds: mean + 3 sd / sqrt(seeds) of the statistic between "
             f"two independent target samples): exact mixture "
             f"{fl:.2e}, two-moons {res['moons_floor']['limit']:.2e}, OU windows (signature "
             f"MMD^2) {res['ou_floor']['limit']:.2e}.", "",
             f"Reference, Euler at 1,000 steps: mixture MMD^2 "
             f"{res['exact_reference_euler_1000']['mmd2']:.2e}, two-moons "
             f"{res['moons_reference_euler_1000']['mmd2']:.2e}, OU windows "
             f"{res['ou_reference_euler_1000']['sig_mmd2']:.2e}.", ""]  # fmt: skip
    at10 = min((r for (m, b), r in best.items() if b == 10), key=lambda r: r["mmd2"])
    lines.append(f"- At 10 NFE the best sampler is {at10['method']} ({at10['schedule']}): "
                 f"MMD^2 {at10['mmd2']:.2e}, {'within' if at10['mmd2'] <= fl else 'outside'} "
                 f"the floor.")  # fmt: skip
    outside = [f"{m} ({best[(m, 20)]['mmd2']:.1e})" for m in SECOND_ORDER
               if (m, 20) in best and best[(m, 20)]["mmd2"] > fl]  # fmt: skip
    lines.append(
        "- At 20 NFE (best schedule each) every second-order sampler is within the "
        "floor" + ("." if not outside else "; except " + ", ".join(outside) + ".")
    )
    ad = res["adaptive"]
    ratios = [a["euler_nfe_at_equal_error"] / a["nfe"] for a in ad["adaptive"]
              if a["euler_nfe_at_equal_error"]]  # fmt: skip
    lines += ["", "### Adaptive (Gotta Go Fast) against Euler at equal error", "",
              f"Target {ad['target']} with its exact score (on the 2-D mixture Euler reaches "
              f"the MMD floor by 20 steps, too few to tell samplers apart); error "
              f"{ad['metric']} (sampling floor {ad['floor']:.3f}).", "",
              "| rtol | atol | NFE | error | Euler NFE at equal error | ratio |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for a in ad["adaptive"]:
        e = a["euler_nfe_at_equal_error"]
        e_txt = "-" if e is None else f"{e:.0f}"
        r_txt = "-" if e is None else f"{e / a['nfe']:.2f}x"
        lines.append(f"| {a['rtol']} | {a['atol']} | {a['nfe']:.0f} | {a['error']:.3f} | "
                     f"{e_txt} | {r_txt} |")  # fmt: skip
    lines += ["", "Euler: " + ", ".join(f"{r['steps']} steps {r['error']:.3f}"
                                        for r in ad["euler"]) + "."]  # fmt: skip
    if ratios:
        lines.append(
            f"Measured ratio (Euler NFE / adaptive NFE at equal error): "
            f"{min(ratios):.2f}x to {max(ratios):.2f}x; Gotta Go Fast reports 2-10x."
        )
    sp = res["speed"]
    per = {k: v * 1e3 for k, v in sp["s_per_step"].items()}
    lines += ["", "### Speed of the loop", "",
              f"dpmpp_2m against k-diffusion's sample_dpmpp_2m at batch {sp['batch']} in 2-D, "
              f"{sp['steps']} steps, milliseconds per step (median of interleaved repeats):", "",
              "| model | ours | k-diffusion | ratio |", "|---|---|---|---|",
              f"| free (the loop alone) | {per['free_ours']:.3f} | "
              f"{per['free_k_diffusion']:.3f} | **{sp['free_ratio']:.2f}** |",
              f"| the two-moons score MLP ({per['network']:.3f} ms per call) | "
              f"{per['mlp_ours']:.3f} | "
              f"{per['mlp_k_diffusion']:.3f} | {per['mlp_ours'] / per['mlp_k_diffusion']:.2f} |",
              "", f"Overhead beyond the MLP: ours {sp['mlp_overhead_ours'] * 1e3:.3f} ms, "
              f"k-diffusion (with the VP-to-EDM glue) {sp['mlp_overhead_k_diffusion'] * 1e3:.3f} "
              f"ms per step. Target: the loop within 1.2x of k-diffusion's.", ""]  # fmt: skip
    if res.get("peers"):
        lines += [
            "### The peers on the same exact score",
            "",
            "MMD^2 (mean over the seeds) of the peer's sampler and of ours on the same "
            "knots and starting noise (k-diffusion: Karras sigmas; diffusers: its own "
            "timesteps, with the final step to noise level 0 as our denoising step, and "
            "SA-Solver's last step landing on timestep 0 without one).",
            "",
            "| peer | ours | NFE | peer MMD^2 | ours MMD^2 |",
            "|---|---|---|---|---|",
        ]
        for r in res["peers"]:
            lines.append(f"| {r['peer']} | {r['ours']} | {r['nfe_budget']} | "
                         f"{r['peer_mmd2']:.2e} | {r['ours_mmd2']:.2e} |")  # fmt: skip
        lines.append("")
    lines += _table(ex, "mmd2", res["exact_floor"], "Exact score (2-D Gaussian mixture), MMD^2")
    lines += [""] + _table(ex, "sw", None, "Exact score, sliced Wasserstein")
    lines += [""] + _table(res["moons"], "mmd2", res["moons_floor"],
                           "Trained two-moons score, MMD^2")  # fmt: skip
    lines += [""] + _table(
        res["ou"],
        "sig_mmd2",
        res["ou_floor"],
        "Trained OU-window score, signature MMD^2 (200 windows, seed 0)",
    )
    lines += ["", "![MMD^2 against NFE](results/diffusion_samplers.png)", ""]
    return "\n".join(lines)


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in ((axes[0], "exact", "exact mixture score"),
                           (axes[1], "moons", "trained two-moons score")):  # fmt: skip
        best = _best(res[key], "mmd2")
        colors = plt.cm.tab20(np.linspace(0, 1, len(GRID)))
        for j, method in enumerate(GRID):
            pts = sorted((b, max(r["mmd2"], 1e-5)) for (m, b), r in best.items() if m == method)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="os^vD"[j % 5], color=colors[j],
                        ls="-" if j % 2 == 0 else "--", label=method)  # fmt: skip
        ax.axhline(res[f"{key}_floor"]["limit"], color="k", ls="--", lw=1, label="noise floor")
        ref = res[f"{key}_reference_euler_1000"]["mmd2"]
        if ref > 0:
            ax.axhline(ref, color="grey", ls=":", lw=1, label="Euler, 1,000 steps")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("score evaluations (NFE)")
        ax.set_ylabel("MMD^2, best schedule (clipped at 1e-5)")
        ax.set_title(title)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
