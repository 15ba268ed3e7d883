"""Training memory of a latent SDE against the number of solver steps: direct vs reversible.

Two measures for one ELBO forward + backward with fixed data (20 observation times) and
``dt = 1 / steps``: the bytes autograd saves for the backward pass (counted with
``torch.autograd.graph.saved_tensors_hooks``, deterministic) and the peak resident set size of a
fresh process (``VmHWM`` after a reset, minus the size before the step; Linux).

Run: ``python benchmarks/latent_adjoint_memory.py``; writes
``benchmarks/results/latent_adjoint_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
STEPS = (100, 500, 1000, 2000)


def _problem(steps: int, adjoint, dtype=torch.float32, batch=32):
    from neuralsde.models.latent import LatentSDE

    torch.manual_seed(0)
    model = LatentSDE(3, latent_dim=4, context_dim=16, hidden=64, adjoint=adjoint,
                      dt=1.0 / steps).to(dtype)  # fmt: skip
    g = torch.Generator().manual_seed(0)
    times = torch.linspace(0, 1, 20, dtype=dtype).expand(batch, 20)
    values = torch.randn(batch, 20, 3, generator=g, dtype=dtype)
    return model, times, values


def saved_bytes(steps: int, adjoint) -> int:
    """Bytes of distinct storages autograd keeps for the backward of one ELBO evaluation."""
    model, times, values = _problem(steps, adjoint)
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type == "cpu" and t.numel():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model.elbo(times, values, generator=torch.Generator().manual_seed(1))["loss"]
    loss.backward()
    return sum(seen.values())


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_bytes(steps: int, adjoint) -> int:
    """Peak RSS growth (bytes) of one training step, measured in this (fresh) process.

    Linux: the high-water mark is reset through ``/proc/self/clear_refs`` after a warm-up (a
    forked child would otherwise inherit its parent's peak), then read from ``VmHWM``.
    """
    model, times, values = _problem(steps, adjoint)
    model.elbo(times[:2], values[:2])["loss"].backward()  # warm up allocator and kernels
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    loss = model.elbo(times, values, generator=torch.Generator().manual_seed(1))["loss"]
    loss.backward()
    return (_status_kib("VmHWM") - before) * 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.child:
        steps, adjoint = int(args.child[0]), None if args.child[1] == "none" else args.child[1]
        print(peak_rss_bytes(steps, adjoint))
        return None
    rows, record = [], {"steps": args.steps, "results": {}}
    for adjoint in (None, "reversible"):
        name = adjoint or "direct"
        res = record["results"][name] = {"saved_bytes": [], "peak_rss_bytes": []}
        for steps in args.steps:
            res["saved_bytes"].append(saved_bytes(steps, adjoint))
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(steps), adjoint or "none"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            res["peak_rss_bytes"].append(int(child.stdout.strip().splitlines()[-1]))
            print(f"{name:>10s} {steps:5d} steps: saved {res['saved_bytes'][-1] / 2**20:8.2f} MiB,"
                  f" peak RSS growth {res['peak_rss_bytes'][-1] / 2**20:8.2f} MiB")  # fmt: skip
        rows.append((name, res))
    rev = record["results"]["reversible"]["saved_bytes"]
    record["reversible_saved_ratio_last_over_first"] = rev[-1] / rev[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latent_adjoint_memory.json").write_text(json.dumps(record, indent=2))
    head = "| adjoint | " + " | ".join(f"{s} steps" for s in args.steps) + " |"
    lines = [
        "Latent SDE (batch 32, latent 4, hidden 64), one ELBO forward + backward.\n",
        "Saved-for-backward memory (MiB):\n", head, "|---" * (len(args.steps) + 1) + "|",
    ]  # fmt: skip
    for name, res in rows:
        lines.append(
            f"| {name} | " + " | ".join(f"{b / 2**20:.2f}" for b in res["saved_bytes"]) + " |"
        )
    lines += ["", "Peak RSS growth of a fresh process (MiB):\n", head,
              "|---" * (len(args.steps) + 1) + "|"]  # fmt: skip
    for name, res in rows:
        lines.append(
            f"| {name} | " + " | ".join(f"{b / 2**20:.1f}" for b in res["peak_rss_bytes"]) + " |"
        )
    (args.out / "latent_adjoint_memory.md").write_text("\n".join(lines) + "\n")
    return record


if __name__ == "__main__":
    main()
