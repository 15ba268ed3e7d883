"""Gradients of a solve, as objects that reuse the one loop.

- :class:`Direct`: backpropagation through the steps (autograd records the loop).
- :class:`Reversible`: exact gradients of reversible Heun in O(1) memory. The forward pass
  keeps only the final state; the backward pass walks the steps in reverse through the same
  loop, reconstructs each state with the algebraic inverse of the step, recomputes that one
  step under autograd and pulls the adjoint through it (Kidger et al. 2021).
- :class:`Backsolve`: torchsde's stochastic adjoint (Li et al. 2020).

Tensors inside ``args`` that require gradients get them under every adjoint: the adjoints
differentiate with respect to detached copies and hand the result back to the originals, so
a table built from parameters before the solve is backpropagated through once.
"""

from __future__ import annotations

import torch
from torch.utils import _pytree as pytree

from .loop import integrate
from .methods import METHODS


class Problem:
    """Everything a solve needs, assembled by :func:`neuralsde.solve`.

    ``make_stepper(args)`` builds the method bound to ``args``; ``controller()`` a fresh
    controller (``controller(reverse=True)`` walks a fixed grid backwards); ``outputs`` the
    output bookkeeping (:class:`Outputs`); ``params`` the tensors the SDE's parameters are.
    """

    def __init__(self, make_stepper, controller, source, y0, fg0, t0, t1, args, outputs, params,
                 check_every):  # fmt: skip
        self.make_stepper, self.controller = make_stepper, controller
        self.source, self.y0, self.fg0, self.t0, self.t1 = source, y0, fg0, t0, t1
        self.args, self.outputs, self.params = args, outputs, params
        self.check_every = check_every

    def forward(self, args=None, y0=None, fg0=None):
        """Run the loop; returns ``(ys, y_final, state_final)``."""
        stepper = self.make_stepper(self.args if args is None else args)
        y0 = self.y0 if y0 is None else y0
        fg0 = self.fg0 if fg0 is None else fg0
        state = stepper.init(self.t0, self.t1, y0, fg0)
        saved = []

        def visit(key, y):
            saved.append(y)
            return y

        y, state = integrate(self.controller(), stepper.step, self.source, y0, state, visit,
                             self.check_every)  # fmt: skip
        return self.outputs.collect(saved), y, state


class Outputs:
    """Which grid states are outputs, and how to assemble them as ``(T, batch, state)``.

    ``index``: the grid index of every output time, a list of ``T`` ints (one grid) or a
    ``(T, batch)`` int tensor (one grid per series), or None when an adaptive controller
    reports output numbers ``0..T-1`` itself.
    """

    def __init__(self, index=None):
        self.per_series = isinstance(index, torch.Tensor)
        if self.per_series:
            self.steps, pos = torch.unique(index, sorted=True, return_inverse=True)
            self.pos, self.keys = pos, self.steps.tolist()
        else:
            self.keys = index

    def collect(self, saved):
        ys = torch.stack(saved)
        if not self.per_series:
            return ys
        pos = self.pos.to(ys.device).unsqueeze(-1).expand(-1, -1, ys.shape[-1])
        return ys.gather(0, pos)

    def scatter(self, grad_ys):
        """Per output key, the gradient arriving there: ``{grid index: (batch, state)}``."""
        if not self.per_series:
            return dict(zip(self.keys, grad_ys.unbind(0), strict=True))
        pos = self.pos.to(grad_ys.device)
        summed = grad_ys.new_zeros(len(self.keys), *grad_ys.shape[1:])
        summed.scatter_add_(0, pos.unsqueeze(-1).expand_as(grad_ys), grad_ys)
        return dict(zip(self.keys, summed.unbind(0), strict=True))


def differentiable_leaves(args):
    """The tensors inside ``args`` (nested dicts, lists, tuples, named tuples) that require
    gradients, and a function rebuilding ``args`` with other tensors in their place."""
    leaves, spec = pytree.tree_flatten(args)
    where = [i for i, x in enumerate(leaves) if torch.is_tensor(x) and x.requires_grad]

    def rebuild(new):
        out = list(leaves)
        for i, x in zip(where, new, strict=True):
            out[i] = x
        return pytree.tree_unflatten(out, spec)

    return [leaves[i] for i in where], rebuild


def _detached(tensors):
    return [x.detach().requires_grad_(True) for x in tensors]


class Direct:
    """Backpropagate through the recorded steps (memory grows with the number of steps)."""

    name = None
    per_series = True  # supports one grid per series
    runs_loop = True  # runs neuralsde's loop (backsolve runs torchsde's)

    def check(self, method, sde, fixed: bool) -> None:
        return None

    def solve(self, problem: Problem) -> torch.Tensor:
        return problem.forward()[0]


class Reversible:
    """Exact gradients of reversible Heun's discretisation in O(1) memory; fixed steps."""

    name = "reversible"
    per_series = True
    runs_loop = True

    def check(self, method, sde, fixed: bool) -> None:
        if not method.reversible:
            names = sorted(n for n, m in METHODS.items() if m.reversible)
            want = f"method={names[0]!r}" if len(names) == 1 else f"method in {names}"
            raise ValueError(
                f"adjoint='reversible' needs {want} (an algebraically reversible scheme); "
                f"got method={method.name!r}"
            )
        if not fixed:
            raise ValueError("adjoint='reversible' needs fixed steps; drop rtol/atol")

    def solve(self, problem: Problem) -> torch.Tensor:
        arg_leaves, rebuild = differentiable_leaves(problem.args)
        params = [p for p in problem.params if p.requires_grad]
        fg0 = tuple(v.detach() for v in problem.fg0)  # values only: the forward has no graph
        return _ReversibleAdjoint.apply(
            problem, rebuild, len(params), fg0, problem.y0, *params, *arg_leaves
        )


class _ReversibleAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem, rebuild, n_params, fg0, y0, *inputs):
        with torch.no_grad():
            ys, y, state = problem.forward(y0=y0, fg0=fg0)
        ctx.problem, ctx.rebuild, ctx.n_params = problem, rebuild, n_params
        # copies, so that in-place changes to the returned tensor cannot reach the saved ones
        ctx.save_for_backward(y.clone(), *(v.clone() for v in state), *inputs)
        return ys

    @staticmethod
    def backward(ctx, grad_ys):
        problem = ctx.problem
        y, z, fz, gz, *inputs = ctx.saved_tensors
        params, arg_leaves = inputs[: ctx.n_params], inputs[ctx.n_params :]
        arg_copies = _detached(arg_leaves)
        stepper = problem.make_stepper(ctx.rebuild(arg_copies))
        wrt = (*params, *arg_copies)
        grads_at = problem.outputs.scatter(grad_ys)
        totals = [torch.zeros_like(x) for x in wrt]

        def back(t0, t1, dt, carry, inc, state):
            y1, a_y, a_z = carry
            with torch.no_grad():
                z0 = stepper.inverse_z(dt, y1, inc, state)
            with torch.enable_grad():
                z0 = z0.detach().requires_grad_(True)
                fz0, gz0 = stepper.fg(t0, z0)
                with torch.no_grad():
                    y0 = stepper.inverse_y(dt, y1, inc, fz0, gz0, state)
                y0 = y0.detach().requires_grad_(True)
                y_new, _, state_new = stepper.step(t0, t1, dt, y0, inc, (z0, fz0, gz0))
                grads = torch.autograd.grad(
                    (y_new, state_new[0]), (y0, z0, *wrt), (a_y, a_z), allow_unused=True
                )
            for k, gp in enumerate(grads[2:]):
                if gp is not None:
                    totals[k] += gp
            return (y0.detach(), grads[0], grads[1]), None, (z0.detach(), fz0.detach(),
                                                            gz0.detach())  # fmt: skip

        def inject(key, carry):
            g = grads_at.get(key)
            if g is None:
                return carry
            return (carry[0], carry[1] + g, carry[2])

        carry = (y, torch.zeros_like(y), torch.zeros_like(z))
        carry, _ = integrate(problem.controller(reverse=True), back, problem.source, carry,
                             (z, fz, gz), inject, check_every=0)  # fmt: skip
        _, a_y, a_z = carry
        return (None, None, None, None, a_y + a_z, *totals)


class Backsolve:
    """torchsde's stochastic adjoint: the adjoint SDE is solved backwards with the same
    Brownian path (queryable, so the backward pass can revisit any time). One grid only."""

    name = "backsolve"
    per_series = False
    runs_loop = False

    def check(self, method, sde, fixed: bool) -> None:
        if not isinstance(sde, torch.nn.Module):
            raise TypeError(
                f"adjoint='backsolve' needs the sde to be a torch.nn.Module (so its parameters "
                f"are known); got {type(sde).__name__}"
            )
        if method.torchsde_name is None:
            raise ValueError(
                f"adjoint='backsolve' runs torchsde's adjoint, which has no method "
                f"{method.name!r}; use one with a torchsde counterpart"
            )

    def solve(self, problem: Problem, run) -> torch.Tensor:
        """``run(args, y0, adjoint_params)`` calls torchsde with the SDE bound to ``args``."""
        arg_leaves, rebuild = differentiable_leaves(problem.args)
        params = [p for p in problem.params if p.requires_grad]
        if not arg_leaves:
            return run(problem.args, problem.y0, params)
        return _Isolated.apply(
            lambda y0, copies: run(rebuild(copies), y0, [*params, *copies]),
            len(params), problem.y0, *params, *arg_leaves,
        )  # fmt: skip


class _Isolated(torch.autograd.Function):
    """Run ``fn(y0, copies)`` on detached copies of the ``args`` leaves, and hand the gradients
    of the copies to the originals (so that torchsde's adjoint stops at them)."""

    @staticmethod
    def forward(ctx, fn, n_params, y0, *inputs):
        params, leaves = inputs[:n_params], inputs[n_params:]
        with torch.enable_grad():
            y0c = y0.detach().requires_grad_(y0.requires_grad)
            copies = _detached(leaves)
            out = fn(y0c, copies)
        ctx.out, ctx.wrt = out, (y0c, *params, *copies)
        ctx.n_params = n_params
        return out.detach()

    @staticmethod
    def backward(ctx, grad):
        wrt = [w for w in ctx.wrt if w.requires_grad]
        grads = iter(torch.autograd.grad(ctx.out, wrt, grad, allow_unused=True))
        full = [next(grads) if w.requires_grad else None for w in ctx.wrt]
        return (None, None, *full)
