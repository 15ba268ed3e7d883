"""The one integration loop. Fixed and adaptive steps, the forward pass and the reversible
adjoint's backward pass all run here; what differs between them are the objects it is
handed: a step-size controller (which proposes steps and accepts or rejects them), a step
function, a Brownian source and a visitor called at every output."""

from __future__ import annotations

from typing import NamedTuple

import torch


class DivergenceError(FloatingPointError):
    """Raised when the state stops being finite; ``.time`` and ``.step`` say where."""

    def __init__(self, time: float, step: int, where: str | None = None):
        self.time, self.step = time, step
        where = where or f"at t={time:.6g} (step {step})"
        super().__init__(
            f"the solution stopped being finite {where}; "
            "try a smaller dt, an adaptive method (rtol/atol) or check the drift and diffusion"
        )


class StepLimitError(RuntimeError):
    """Raised when an adaptive solve takes ``max_steps`` steps (or attempts) without reaching
    the last output time: a stiff problem, or tolerances too tight for the noise."""

    def __init__(self, max_steps: int, time: float | None = None):
        self.max_steps, self.time = max_steps, time
        where = f" at t={time:.6g}" if time is not None else ""
        super().__init__(
            f"adaptive solve took max_steps={max_steps} steps{where} without finishing; "
            "loosen rtol/atol, raise max_steps, or use fixed steps (dt)"
        )


class Attempt(NamedTuple):
    """One attempted step, as a controller reports it to the loop.

    ``time``: where the step ends, for error reports, as the controller's ``time_of`` reads it
    (a grid index, or the time itself). ``landing``: the output key the step lands on (a grid
    index or output number), or None when it lands on no output time.
    """

    accepted: bool
    y: object
    state: object
    time: object
    landing: int | None


def integrate(controller, step, source, y, state, visit, check_every: int = 32):
    """Run ``controller``'s steps from ``(y, state)``; return the final ``(y, state)``.

    ``step(t0, t1, dt, y, inc, state) -> (y1, error, state1)`` takes one step;
    ``controller.attempt(step, source, y, state) -> Attempt | None`` proposes, takes and judges
    one (None when done); ``visit(key, y) -> y`` sees the state at every output, the start
    included (``controller.start``). Every ``check_every`` accepted steps (0: never) the states
    are checked for non-finite values in one batched test, which raises
    :class:`DivergenceError` at the first bad step without a host sync per step.
    """
    y = visit(controller.start, y)
    recent: list = []
    n = 0
    try:
        while (a := controller.attempt(step, source, y, state)) is not None:
            if not a.accepted:
                continue
            y, state, n = a.y, a.state, n + 1
            if check_every:
                recent.append((a.time, y))
                if len(recent) == check_every:
                    check_finite(recent, n - len(recent) + 1, controller.time_of)
                    recent = []
            if a.landing is not None:
                y = visit(a.landing, y)
    except RuntimeError as err:
        raise misfit(err, y, f"after step {n}") from None
    if recent:
        check_finite(recent, n - len(recent) + 1, controller.time_of)
    return y, state


def misfit(err: RuntimeError, y, where: str) -> Exception:
    """A ValueError naming f and g for torch's errors about tensors whose shapes or dtypes do
    not fit together (a state that changed shape after t0); ``err`` itself otherwise."""
    text = str(err)
    if not any(s in text for s in ("must match the size", "shape", "dtype", "expected scalar")):
        return err
    return ValueError(
        f"the drift f(t, y) or the diffusion g(t, y) returned a tensor that does not fit the "
        f"state (shape {tuple(y.shape)}, dtype {y.dtype}) {where}; they must keep the state's "
        f"shape and dtype at every t, not only at t0 ({err})"
    )


def check_finite(recent, first_step: int, time_of=float) -> None:
    """Raise :class:`DivergenceError` at the first non-finite state of ``recent``, a list of
    ``(time, y)`` after steps ``first_step, first_step + 1, ...`` (``time_of(time)`` gives the
    time: a float, a 0-d or a ``(batch, 1)`` tensor)."""
    if bool(torch.isfinite(recent[-1][1]).all()):
        return
    for k, (key, y) in enumerate(recent):
        bad = ~torch.isfinite(y).reshape(y.shape[0], -1).all(-1)
        if bool(bad.any()):
            time = time_of(key)
            if torch.is_tensor(time) and time.dim() > 0:  # one grid per series
                time = time.reshape(-1)[int(bad.nonzero()[0])]
            raise DivergenceError(float(time), first_step + k)
