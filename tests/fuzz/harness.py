"""Run one fuzz case under a time and a memory limit and say what kind of outcome it had.

The classes (issue 19's tally):

* ``A``: an obscure error: a ValueError/TypeError not raised by neuralsde, or one whose message
  names none of the user's arguments, or any other exception type;
* ``B``: a silently wrong result: the call returned, but the property's check failed (a round
  trip that is not exact, a wrong shape, a non-finite value);
* ``C``: a hang or a runaway allocation: the case ran past its time limit or its memory limit;
* ``D``: untrusted data was executed (a payload's marker appeared);
* ``E``: as it should be: a correct result, a ValueError/TypeError from neuralsde that
  names the argument, or a documented failure of the run (``DivergenceError``,
  ``StepLimitError``, ``TrainingDiverged``: they name the time and step, or the epoch and
  batch).

In the test suite every case must be ``E``. With ``NEURALSDE_FUZZ_TALLY=<file>`` each case's
class is appended to the file instead, and nothing fails (``benchmarks/fuzz_tally.py``).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import traceback
from contextlib import contextmanager
from pathlib import Path

from hypothesis import strategies as st

import neuralsde
from neuralsde import train
from neuralsde.core import loop
from neuralsde.core.loop import DivergenceError

# (names missing from older versions, so that benchmarks/fuzz_tally.py can measure them)
StepLimitError = getattr(loop, "StepLimitError", DivergenceError)
TrainingDiverged = getattr(train, "TrainingDiverged", DivergenceError)

PACKAGE = str(Path(neuralsde.__file__).parent)
SECONDS = float(os.environ.get("NEURALSDE_FUZZ_SECONDS", 20))
MEMORY = 3 * 2**30  # bytes a case may add to the process's address space
TALLY = os.environ.get("NEURALSDE_FUZZ_TALLY")
SCALE = {"ci": 1, "slow": 10}[os.environ.get("NEURALSDE_FUZZ_PROFILE", "ci")]


class CaseTimeout(BaseException):
    """Raised inside a case that ran past its time limit (a BaseException, so that no
    ``except Exception`` in the code under test swallows it)."""


def examples(n: int) -> int:
    """The number of hypothesis examples of a property: ``n`` in CI, ten times more in the
    slow profile."""
    return n * SCALE


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


@contextmanager
def limits(seconds: float = SECONDS, memory: int = MEMORY):
    """Raise :class:`CaseTimeout` after ``seconds`` and refuse allocations past ``memory``
    more bytes of address space (RLIMIT_AS), both restored on exit."""

    def expire(signum, frame):
        raise CaseTimeout(f"the case ran past {seconds} s")

    old_handler = signal.signal(signal.SIGALRM, expire)
    old_limit = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory, old_limit[1]))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, old_limit)


def _raised_in_package(err: BaseException) -> bool:
    tb = err.__traceback__
    frames = traceback.extract_tb(tb)
    return bool(frames) and frames[-1].filename.startswith(PACKAGE)


def _runaway(err: BaseException) -> bool:
    if isinstance(err, MemoryError | CaseTimeout):
        return True
    return isinstance(err, RuntimeError) and "allocate" in str(err)


def classify(call, names, check=None, *, seconds=SECONDS, memory=MEMORY, marker=None,
             allowed=()):  # fmt: skip
    """``(class, detail)`` of ``call()``: see the module docstring. ``names`` are the user's
    argument names an error may name (none: a clean case, where no error is right);
    ``check(result)`` asserts a returned result is right;
    ``marker`` is a path whose existence afterwards means a payload ran; ``allowed`` are
    further exception types the entry point documents (``FileNotFoundError`` for a missing
    file), held to the same rule as ValueError/TypeError."""
    names = (names,) if isinstance(names, str) else tuple(names or ())
    try:
        with limits(seconds, memory):
            result = call()
            if check is not None:
                check(result)
    except AssertionError as err:
        outcome = ("B", f"wrong result: {err}")
    except BaseException as err:  # noqa: BLE001 - every outcome is classified
        if isinstance(err, KeyboardInterrupt):
            raise
        detail = f"{type(err).__name__}: {str(err)[:300]}"
        if _runaway(err):
            outcome = ("C", detail)
        elif isinstance(
            err, DivergenceError | StepLimitError | TrainingDiverged
        ) and _raised_in_package(err):
            outcome = ("E", detail)  # documented: they name the time and step, or the epoch
        elif (
            isinstance(err, (ValueError, TypeError, *allowed))
            and _raised_in_package(err)
            and any(n in str(err) for n in names)
        ):
            outcome = ("E", detail)
        else:
            outcome = ("A", detail)
    else:
        outcome = ("E", "returned a correct result")
    if marker is not None and Path(marker).exists():
        outcome = ("D", f"a payload ran: {marker} exists")
    return outcome


def case(prop: str, call, names, check=None, info=None, **kw) -> None:
    """Run one case; in tests require class ``E``, in tally mode record its class (and
    ``info``, a description of the drawn arguments)."""
    kind, detail = classify(call, names, check, **kw)
    if TALLY:
        row = {"property": prop, "class": kind, "detail": detail, "info": repr(info)}
        with open(TALLY, "a") as f:
            f.write(json.dumps(row) + "\n")
        return
    assert kind == "E", f"{prop}: class {kind}: {detail}"


@st.composite
def sweep(draw, good: dict, bad: dict):
    """``(kwargs, culprit)``: every argument drawn from its ``good`` strategy, except, in about
    half the cases, one ``culprit`` drawn from its ``bad`` strategy (``culprit`` is None in a
    clean case). A clean case must return a correct result; a case with a culprit must either
    return a correct result or raise an error that names the culprit."""
    kwargs = {k: draw(v) for k, v in good.items()}
    culprit = None
    if draw(st.booleans()):
        culprit = draw(st.sampled_from(sorted(bad)))
        kwargs[culprit] = draw(bad[culprit])
    return kwargs, culprit
