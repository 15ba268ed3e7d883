"""One training epoch of the same LNSDE classifier: neuralsde.solve vs torchsde.sdeint.

Same model, data (BasicMotions training split, mini-batches), Euler with the same dt, same loss
and optimiser. Four variants:

* ``neuralsde``: ``neuralsde.solve`` with the control path in ``args``; ``solve`` calls the
  model's ``precompute`` hook, which tabulates ``X(t)``, the drift's first layer and ``sigma(t)``
  on the step grid (what ``StableSDE.hidden_path`` does);
* ``torchsde``: ``torchsde.sdeint`` on exactly the same model (the same tables, built by hand on
  the same grid): the integrator alone differs;
* ``torchsde_reference``: ``torchsde.sdeint`` with the spline evaluated at every drift call, as
  the reference implementation of Oh, Lim & Kim trains;
* ``bare_loop``: a hand-written ``z = z + f dt + g dW`` loop with no solver at all: what the
  model itself costs when stepped from Python. ``torchsde / bare_loop`` is about the speed-up
  that any step-by-step integrator can show over torchsde on this model.

Prints the per-epoch times and the ratios and writes
``benchmarks/results/stable_epoch_vs_torchsde.json`` (and ``.md``).
Target: neuralsde >= 5x faster.

    python benchmarks/stable_epoch_vs_torchsde.py --epochs 3 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torchsde

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from neuralsde.core.grid import step_grid  # noqa: E402
from neuralsde.core.solve import solve  # noqa: E402
from neuralsde.data import IrregularBatch  # noqa: E402
from neuralsde.datasets import load_basic_motions  # noqa: E402
from neuralsde.estimators import SDEClassifier  # noqa: E402
from neuralsde.models import PathClassifier  # noqa: E402


def bare_euler(sde, z0, ts, dt):
    """The least any step-by-step integrator can do: ``z += f dt + g dW`` on the fixed grid,
    noise drawn in one call, nothing else (no checks, no output bookkeeping)."""
    n = max(1, math.ceil(float(ts[-1] - ts[0]) / dt - 1e-9))
    times = ts[0] + dt * torch.arange(n, dtype=ts.dtype, device=ts.device)
    dw = torch.randn(n, *z0.shape, dtype=z0.dtype, device=z0.device) * math.sqrt(dt)
    z = z0
    for i in range(n):
        f, g = sde.f_and_g(times[i], z)
        z = z + f * dt + g * dw[i]
    return z.unsqueeze(0)


class WithArgs(torch.nn.Module):
    """A torchsde-style ``f(t, z)``, ``g(t, z)`` view of an SDE with its ``args`` bound."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, sde, args):
        super().__init__()
        self.sde, self.args = sde, args

    def f(self, t, z):
        return self.sde.f(t, z, self.args)

    def g(self, t, z):
        return self.sde.g(t, z, self.args)

    def f_and_g(self, t, z):
        return self.sde.f_and_g(t, z, self.args)


def integrate(integrator, sde, z0, ts, dt, generator, args=None):
    if integrator == "neuralsde":
        # the core seeds its noise from a CPU generator; on CUDA use the global stream
        generator = None if z0.is_cuda else generator
        return solve(sde, z0, ts, method="euler", dt=dt, generator=generator, args=args)
    if args is not None:
        sde = WithArgs(sde, args if integrator == "torchsde_reference" else
                       sde.precompute(step_grid(ts, dt)[0], args))  # fmt: skip
    if integrator == "bare_loop":
        return bare_euler(sde, z0, ts, dt)
    return torchsde.sdeint(sde, z0, ts, method="euler", dt=dt)


def epoch(model, est, data, integrator, batch_size, dt, opt, generator):
    times, values, target = data
    order = torch.randperm(times.shape[0], generator=torch.Generator().manual_seed(0))
    order = order.to(times.device)
    sync = torch.cuda.synchronize if times.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        path = est._path(times[idx], values[idx])
        sde, args = model.encoder, model.encoder.control_args(path)
        ts = torch.stack([path.interval[0], path.interval[-1]]).to(values)
        z = integrate(integrator, sde, sde.initial_state(args), ts, dt, generator, args)
        loss = torch.nn.functional.cross_entropy(model.head(z[-1]), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync()
    return time.perf_counter() - start


class _Linear(torch.nn.Module):
    """``dz = -a z dt + a dW``: almost free to evaluate, so its solve time is the overhead of
    the integrator itself (Brownian increments, step loop, autograd bookkeeping)."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.5))

    def f(self, t, z):
        return -self.a * z

    def g(self, t, z):
        return self.a.expand_as(z)


def overhead(integrator, batch, hidden, dt, device, repeats=20):
    """Median seconds of one solve + backward of :class:`_Linear` over [0, 1]."""
    sde = _Linear().to(device)
    z0 = torch.randn(batch, hidden, device=device)
    ts = torch.tensor([0.0, 1.0], device=device)
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if z0.is_cuda else (lambda: None)
    times = []
    for _ in range(repeats + 2):
        sync()
        start = time.perf_counter()
        integrate(integrator, sde, z0, ts, dt, gen)[-1].sum().backward()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def profile_epoch(model, est, data, batch_size, opt, generator, out: Path, top=15):
    """Profile one neuralsde epoch by operator; write the ``top`` operators by self CPU time
    (forward and backward together) as a markdown table to ``out``."""
    from torch.profiler import ProfilerActivity, profile

    epoch(model, est, data, "neuralsde", batch_size, est.dt_, opt, generator)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        total = epoch(model, est, data, "neuralsde", batch_size, est.dt_, opt, generator)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    spent = sum(e.self_cpu_time_total for e in events)
    lines = [
        f"One LNSDE epoch under torch.profiler ({total:.3f} s with the profiler on): the top "
        f"{top} operators by self CPU time, forward and backward.",
        "",
        "| operator | calls | self CPU (ms) | share |",
        "|---|---|---|---|",
    ]
    for e in events[:top]:
        lines.append(f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | "
                     f"{e.self_cpu_time_total / spent:.1%} |")  # fmt: skip
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per integrator")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=HERE / "results" / "stable_epoch_vs_torchsde.json")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also profile one neuralsde epoch by operator (torch.profiler)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    batch = IrregularBatch.from_xarray(load_basic_motions()).to(dtype=torch.float32)
    train, _, _ = batch.drop(0.3, seed=0).split((0.7, 0.15, 0.15), seed=0)
    # the estimator only provides the preprocessing (scaling, control path, default dt)
    est = SDEClassifier(
        kind="lnsde", hidden=args.hidden, epochs=1, verbose=False, device=args.device
    )
    est.classes_ = sorted(set(train.labels))
    est._fit_scaling(train)
    times, values, _ = est._tensors(train)
    target = torch.as_tensor([est.classes_.index(c) for c in train.labels], device=args.device)
    data = (times, values, target)

    timings = {}
    for integrator in ("neuralsde", "torchsde", "torchsde_reference", "bare_loop"):
        torch.manual_seed(0)
        model = PathClassifier(est._encoder(), len(est.classes_), head=est.head).to(args.device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)  # the solver seeds its noise from a CPU generator
        epoch(model, est, data, integrator, args.batch_size, est.dt_, opt, gen)  # warm-up
        timings[integrator] = [
            epoch(model, est, data, integrator, args.batch_size, est.dt_, opt, gen)
            for _ in range(args.epochs)
        ]
    if args.profile:
        torch.manual_seed(0)
        model = PathClassifier(est._encoder(), len(est.classes_), head=est.head).to(args.device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        profile_epoch(model, est, data, args.batch_size, opt, gen,
                      args.out.with_name("stable_epoch_profile.md"))  # fmt: skip
    med = {k: statistics.median(v) for k, v in timings.items()}
    bare = {
        k: overhead(k, args.batch_size, args.hidden, est.dt_, args.device)
        for k in ("neuralsde", "torchsde")
    }
    ratio = med["torchsde"] / med["neuralsde"]
    ratio_ref = med["torchsde_reference"] / med["neuralsde"]
    # about the speed-up over torchsde of an integrator with no overhead at all
    bound = med["torchsde"] / med["bare_loop"]
    steps = round(1 / est.dt_)
    result = {
        "dataset": "BasicMotions (train split, missing rate 0.3)", "model": "LNSDE",
        "device": str(args.device), "hidden": args.hidden, "batch_size": args.batch_size,
        "n_train": len(train),
        "dt": est.dt_, "host": platform.node(), "steps_per_solve": steps, "threads": args.threads,
        "epoch_seconds": timings, "median_epoch_seconds": med,
        "speedup": ratio, "speedup_vs_reference": ratio_ref, "speedup_of_hand_written_loop": bound,
        "integrator_only_seconds_per_solve": bare,
        "integrator_only_speedup": bare["torchsde"] / bare["neuralsde"],
        "torch": torch.__version__, "torchsde": torchsde.__version__,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    rows = [
        ("neuralsde.solve", med["neuralsde"], 1.0),
        ("torchsde.sdeint, same model", med["torchsde"], ratio),
        ("torchsde.sdeint, spline each step (reference style)", med["torchsde_reference"],
         ratio_ref),
        ("hand-written Euler loop, same model (no integrator overhead)",
         med["bare_loop"], bound),
        ("integrator alone, neuralsde (s per solve + backward)", bare["neuralsde"], 1.0),
        ("integrator alone, torchsde (s per solve + backward)", bare["torchsde"],
         bare["torchsde"] / bare["neuralsde"]),
    ]  # fmt: skip
    table = ["| integrator | s/epoch | neuralsde speed-up |", "|---|---|---|"]
    table += [f"| {name} | {sec:.4f} | {r:.2f}x |" for name, sec, r in rows]
    args.out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print(
        f"LNSDE, BasicMotions train ({len(train)} series), batch {args.batch_size}, "
        f"Euler dt={est.dt_:.4g} ({steps} steps), {args.device}, {args.threads} thread(s)"
    )
    print(f"neuralsde.solve : {med['neuralsde']:.3f} s/epoch  {timings['neuralsde']}")
    print(f"torchsde.sdeint : {med['torchsde']:.3f} s/epoch  {timings['torchsde']}")
    print(
        f"torchsde.sdeint, spline each step (reference style): "
        f"{med['torchsde_reference']:.3f} s/epoch  {timings['torchsde_reference']}"
    )
    print(f"speed-up, same model (torchsde / neuralsde): {ratio:.2f}x  (target >= 5x)")
    print(f"speed-up vs reference-style training: {ratio_ref:.2f}x")
    print(
        f"hand-written Euler loop (no solver overhead at all): {med['bare_loop']:.3f} s/epoch, "
        f"{bound:.2f}x faster than torchsde, {med['bare_loop'] / med['neuralsde']:.2f}x the time "
        f"of neuralsde.solve"
    )
    print(
        f"integrator alone (trivial SDE, solve + backward): neuralsde "
        f"{bare['neuralsde'] * 1e3:.1f} ms, torchsde {bare['torchsde'] * 1e3:.1f} ms, "
        f"{bare['torchsde'] / bare['neuralsde']:.2f}x"
    )


if __name__ == "__main__":
    main()
