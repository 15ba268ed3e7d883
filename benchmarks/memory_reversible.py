"""Peak memory of gradients vs number of steps: reversible adjoint vs direct backprop.

Each measurement runs in a fresh subprocess and reports the growth of the peak resident
set size (ru_maxrss) over the resident size after a warm-up, for one forward + backward
pass of a neural SDE (batch 1024, state 32, width 64, float64, reversible Heun on [0, 1]).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import torch
from _common import markdown, write


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def worker(steps: int, adjoint: str | None) -> dict:
    from neuralsde import solve
    from neuralsde.examples import NeuralSDE

    torch.set_num_threads(1)
    torch.manual_seed(0)
    sde = NeuralSDE(32, width=64, sde_type="stratonovich").double()
    y0 = torch.randn(1024, 32, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)

    def run(n):
        ys = solve(
            sde,
            y0,
            ts,
            method="reversible_heun",
            dt=1.0 / n,
            adjoint=adjoint,
            generator=torch.Generator().manual_seed(1),
        )
        ys[-1].square().mean().backward()

    run(10)  # warm-up: allocator pools, autograd engine threads
    base = _rss_mb()
    run(steps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"steps": steps, "adjoint": str(adjoint), "peak_growth_mb": peak - base}


def main(direct_steps=(100, 200, 400), reversible_steps=(100, 1000, 10000)):
    rows, results = [], []
    for adjoint, steps_list in (("reversible", reversible_steps), (None, direct_steps)):
        for steps in steps_list:
            # A fixed mmap threshold makes glibc return freed large blocks to the OS, so the
            # resident size tracks live memory instead of the allocator's retained heap.
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
            out = subprocess.run(
                [sys.executable, __file__, "--worker", str(steps), str(adjoint)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            rows.append([r["adjoint"], steps, r["peak_growth_mb"]])
    rev = [r["peak_growth_mb"] for r in results if r["adjoint"] == "reversible"]
    direct = [r["peak_growth_mb"] for r in results if r["adjoint"] == "None"]
    summary = {
        "reversible_ratio_max_over_min": max(rev) / min(rev),
        "direct_ratio_last_over_first": direct[-1] / direct[0],
    }
    table = markdown(["adjoint", "steps", "peak memory growth (MB)"], rows)
    table += (
        f"\n\nreversible: max/min over {reversible_steps[0]}..{reversible_steps[-1]} steps = "
        f"{summary['reversible_ratio_max_over_min']:.2f} (target <= 1.2); direct backprop grows "
        f"{summary['direct_ratio_last_over_first']:.1f}x from {direct_steps[0]} to "
        f"{direct_steps[-1]} steps"
    )
    write("memory_reversible", {"results": results, **summary}, table)
    return summary


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        adj = None if sys.argv[3] == "None" else sys.argv[3]
        print(json.dumps(worker(int(sys.argv[2]), adj)))
    else:
        argparse.ArgumentParser(description=__doc__).parse_args()
        main()
