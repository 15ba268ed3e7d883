"""Solver speed: neuralsde.solve vs torchsde.sdeint, side by side in one process.

Setup (issue #2): batch 256, state 32, MLP drift and diffusion of width 64, 100 Euler
steps on [0, 1], CPU, float32; torchsde uses its default Brownian source. Prints the
forward ratio, the forward+backward ratio and solve's overhead over the bare cost of the
same 100 drift-and-diffusion evaluations, and over a hand-written Euler loop (pre-drawn noise,
one fused update per step): the floor any integrator of this SDE has.
"""

from __future__ import annotations

import argparse

import torch
import torchsde
from _common import best_time, interleaved, markdown, write

from neuralsde import solve
from neuralsde.examples import NeuralSDE


def main(batch=256, state=32, width=64, steps=100, repeat=15):
    torch.manual_seed(0)
    sde = NeuralSDE(state, width=width, depth=2)
    y0 = torch.randn(batch, state)
    ts = torch.tensor([0.0, 1.0])
    dt = 1.0 / steps
    gen = torch.Generator().manual_seed(0)

    def ours():
        return solve(sde, y0, ts, dt=dt, generator=gen)

    def theirs():
        return torchsde.sdeint(sde, y0, ts, method="euler", dt=dt)

    def bare():
        t = ts[0]
        for _ in range(steps):
            sde.f_and_g(t, y0)

    def hand_written():  # the least an Euler loop does: f, g, one randn, y += f dt + g dW
        t, y = ts[0], y0
        dw = torch.randn(steps, *y0.shape) * dt**0.5
        for i in range(steps):
            f, g = sde.f_and_g(t, y)
            y = torch.addcmul(y, g, dw[i]).add_(f, alpha=dt)
        return y

    def backward(fn):
        def run():
            fn()[-1].square().mean().backward()

        return run

    with torch.no_grad():
        fwd = interleaved({"bare": bare, "hand": hand_written, "ours": ours}, repeat)
        t_theirs = best_time(theirs, max(3, repeat // 3))
    t_bare, t_hand, t_ours = fwd["bare"], fwd["hand"], fwd["ours"]
    t_ours_b = best_time(backward(ours), repeat)
    t_theirs_b = best_time(backward(theirs), max(3, repeat // 3))
    res = {
        "setup": dict(batch=batch, state=state, width=width, steps=steps, dtype="float32"),
        "seconds": dict(
            bare=t_bare,
            hand_written_euler=t_hand,
            solve=t_ours,
            sdeint=t_theirs,
            solve_backward=t_ours_b,
            sdeint_backward=t_theirs_b,
        ),
        "forward_speedup": t_theirs / t_ours,
        "forward_backward_speedup": t_theirs_b / t_ours_b,
        "overhead_vs_bare": t_ours / t_bare,
        "hand_written_vs_bare": t_hand / t_bare,
        "overhead_vs_hand_written": t_ours / t_hand,
    }
    table = markdown(
        ["measure", "neuralsde (ms)", "torchsde (ms)", "ratio", "target"],
        [
            [
                "forward",
                1e3 * t_ours,
                1e3 * t_theirs,
                f"{res['forward_speedup']:.1f}x faster",
                ">= 10x",
            ],
            [
                "forward + backward",
                1e3 * t_ours_b,
                1e3 * t_theirs_b,
                f"{res['forward_backward_speedup']:.1f}x faster",
                ">= 5x",
            ],
            [
                "solve / bare f,g evaluations",
                1e3 * t_ours,
                1e3 * t_bare,
                f"{res['overhead_vs_bare']:.3f}",
                "<= 1.15",
            ],
            [
                "hand-written Euler loop / bare f,g evaluations",
                1e3 * t_hand,
                1e3 * t_bare,
                f"{res['hand_written_vs_bare']:.3f}",
                "(the update's own arithmetic)",
            ],
            [
                "solve / hand-written Euler loop",
                1e3 * t_ours,
                1e3 * t_hand,
                f"{res['overhead_vs_hand_written']:.3f}",
                "",
            ],
        ],
    )
    write("solver_vs_torchsde", res, table)
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 keeps timings stable on a shared 2-core machine)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    main(repeat=args.repeat)
