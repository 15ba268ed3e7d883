"""Exact gradients of reversible Heun in O(1) memory.

The forward pass keeps only the final state. The backward pass walks the steps in
reverse, reconstructs each state with the algebraic inverse of the step, recomputes
that one step under autograd and pulls the adjoint through it (Kidger et al. 2021).
The result equals backpropagation through the same discretisation up to round-off.
"""

from __future__ import annotations

import torch

from .sde import f_and_g


def reversible_solve(stepper, y0, times, dts, noise, out_index, fg0, check_every, params=None):
    """Reversible-Heun solve with the O(1)-memory backward. Shapes as in ``solve``."""
    sde = stepper.sde
    if params is None:
        params = list(sde.parameters()) if isinstance(sde, torch.nn.Module) else []
    params = [p for p in params if p.requires_grad]
    fg0 = tuple(v.detach() for v in fg0)  # values only: the forward runs without a graph
    return _ReversibleAdjoint.apply(
        stepper, times, dts, noise, out_index, fg0, check_every, y0, *params
    )


class _ReversibleAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, stepper, times, dts, noise, out_index, fg0, check_every, y0, *params):
        from .solve import fixed_steps

        with torch.no_grad():
            ys, state = fixed_steps(stepper, y0, times, dts, noise, out_index, fg0, check_every)
        ctx.stepper, ctx.times, ctx.dts, ctx.noise = stepper, times, dts, noise
        ctx.out_index = out_index
        # the last output is the final state (ts[-1] ends the grid); a copy, so that in-place
        # changes to the returned tensor cannot reach the saved one
        ctx.save_for_backward(ys[-1].clone(), state[0], *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys):
        stepper, times, dts, noise = ctx.stepper, ctx.times, ctx.dts, ctx.noise
        y, z, *params = ctx.saved_tensors
        out_pos = {i: k for k, i in enumerate(ctx.out_index)}
        n = len(dts)
        a_y = grad_ys[out_pos[n]].clone() if n in out_pos else torch.zeros_like(y)
        a_z = torch.zeros_like(z)
        a_params = [torch.zeros_like(p) for p in params]
        with torch.no_grad():
            state = (z, *f_and_g(stepper.sde, times[n], z))
        for i in range(n - 1, -1, -1):
            dt = dts[i]
            dw, u = noise[i]
            with torch.no_grad():
                z0 = stepper.inverse_z(dt, y, dw, state)
            with torch.enable_grad():
                z0 = z0.detach().requires_grad_(True)
                fz0, gz0 = f_and_g(stepper.sde, times[i], z0)
                with torch.no_grad():
                    y0 = stepper.inverse_y(dt, y, dw, fz0, gz0, state)
                y0 = y0.detach().requires_grad_(True)
                y1, state1 = stepper.step(times[i], times[i + 1], dt, y0, dw, u, (z0, fz0, gz0))
                grads = torch.autograd.grad(
                    (y1, state1[0]), (y0, z0, *params), (a_y, a_z), allow_unused=True
                )
            a_y, a_z = grads[0], grads[1]
            for k, gp in enumerate(grads[2:]):
                if gp is not None:
                    a_params[k] += gp
            if i in out_pos:
                a_y = a_y + grad_ys[out_pos[i]]
            y, state = y0.detach(), (z0.detach(), fz0.detach(), gz0.detach())
        return (None, None, None, None, None, None, None, a_y + a_z, *a_params)
