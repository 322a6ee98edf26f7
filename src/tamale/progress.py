"""Progress reporting and cancellation for long-running engine work.

Every long operation in tamale exists as a *work generator*: a generator that
yields :class:`ProgressEvent` objects while it runs and ``return``\\ s its typed
result. The same generator is consumed in three ways:

* headless (scripts, CLI, tests) through :func:`drain`, which forwards events to
  an optional callback and returns the result;
* by the napari plugin, which runs it in a thread worker, turns events into a
  determinate progress bar and maps its Cancel button onto a
  :class:`CancelToken`;
* by other engine code, with ``result = yield from iter_other_work(...)``,
  which forwards the inner events and receives the inner result.

Work that cannot be written as a generator (a training loop that calls back
from deep inside) takes a ``progress`` callback and a ``cancel`` token instead;
:func:`run_in_thread` adapts such a function into a work generator.

This module uses only the standard library.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "CancelToken",
    "Cancelled",
    "ProgressCallback",
    "ProgressEvent",
    "Throttle",
    "Work",
    "check",
    "drain",
    "run_in_thread",
]

R = TypeVar("R")


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report from engine work.

    Parameters
    ----------
    stage : str
        Short machine-readable name of the current stage, e.g. ``"slices:xy"``,
        ``"download"`` or ``"train"``. A change of stage starts a new bar.
    step : int
        Units of work finished in this stage (0 ≤ step ≤ total).
    total : int or None
        Units of work in this stage, or None when unknown (indeterminate).
    message : str
        Human-readable text to show next to the bar.
    metrics : Mapping[str, float]
        Optional numbers that go with this step (loss, validation scores...).
    """

    stage: str
    step: int
    total: int | None
    message: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """Fraction of the stage that is done, or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.step / self.total))


ProgressCallback = Callable[[ProgressEvent], None]
Work = Generator[ProgressEvent, None, R]
"""A work generator: yields :class:`ProgressEvent`, returns a result of type ``R``."""


class Cancelled(Exception):
    """Raised inside engine work when its :class:`CancelToken` was cancelled."""


class CancelToken:
    """A thread-safe flag that asks running work to stop at its next check.

    Engine loops call :meth:`raise_if_cancelled` between units of work (a
    slice, a batch, a chunk, a training iteration). The GUI sets the token from
    its Cancel button; scripts may set it from another thread.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` has been called."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set (``None`` never cancels)."""
    if cancel is not None:
        cancel.raise_if_cancelled()


def drain(
    work: Generator[ProgressEvent, Any, R],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> R:
    """Run a work generator to completion and return its result.

    Parameters
    ----------
    work : generator
        A work generator (see module docstring).
    progress : callable, optional
        Called with every :class:`ProgressEvent` the work yields.
    cancel : CancelToken, optional
        Checked after every event; when set, the generator is closed and
        :class:`Cancelled` is raised.

    Returns
    -------
    The value the generator returned.
    """
    try:
        while True:
            event = next(work)
            if progress is not None:
                progress(event)
            if cancel is not None and cancel.cancelled:
                work.close()
                raise Cancelled("cancelled by the user")
    except StopIteration as stop:
        return stop.value


def run_in_thread(
    func: Callable[..., R],
    *args: Any,
    stage: str = "work",
    cancel: CancelToken | None = None,
    poll_interval: float = 0.05,
    **kwargs: Any,
) -> Work[R]:
    """Adapt a callback-style function into a work generator.

    ``func`` is called in a helper thread as ``func(*args, progress=cb,
    cancel=cancel, **kwargs)``; every event it reports through ``cb`` is
    yielded here, in order, and ``func``'s return value becomes the
    generator's return value. Exceptions raised by ``func`` are re-raised.

    Closing the generator early (e.g. the GUI's Cancel) sets ``cancel`` so the
    function stops at its next check, then waits for the thread to end.
    """
    token = cancel if cancel is not None else CancelToken()
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args, progress=events.put, cancel=token, **kwargs)
        except BaseException as exc:  # re-raised in the consuming thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"tamale-{stage}", daemon=True)
    thread.start()
    try:
        while thread.is_alive() or not events.empty():
            try:
                yield events.get(timeout=poll_interval)
            except queue.Empty:
                continue
    finally:
        if thread.is_alive():
            token.cancel()
            thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Throttle:
    """Limit how often progress events are produced by fast loops.

    ``Throttle(0.1).ready()`` returns True at most every 0.1 s (and always on
    its first call), so a loop over millions of chunks can report without
    flooding the GUI.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._last = -float("inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False
