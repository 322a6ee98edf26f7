"""Run engine work from a dock: thread worker, determinate progress, Cancel.

Engine work is a generator that yields :class:`tamale.progress.ProgressEvent`
and returns its result (see :mod:`tamale.progress`). :class:`TaskRunner` is the
one adapter every dock uses to run it: a Run button, a Cancel button, a
progress bar and a status line. It starts the generator in a napari thread
worker (the UI never freezes), turns events into a determinate bar (in the dock
and in napari's activity panel), stops the work on Cancel (at the next yield,
and inside loops through the :class:`~tamale.progress.CancelToken`), delivers
the result to a callback on the GUI thread, and reports errors as napari
notifications: a :class:`~tamale.errors.TamaleInputError` (or other
``ValueError``) as its plain message, anything else with its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Generator
from typing import Any

from magicgui.widgets import Container, Label, ProgressBar, PushButton
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import notification_manager, show_error, show_info
from qtpy.QtWidgets import QSizePolicy

from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.progress import Cancelled, CancelToken, ProgressEvent

__all__ = ["TaskRunner", "report_error"]

log = logging.getLogger(__name__)

WorkFactory = Callable[[CancelToken], Generator[ProgressEvent, Any, Any]]


class _WorkFailed(Exception):
    """Carries a RuntimeError out of a worker.

    superqt's worker treats a RuntimeError returned by the work as a deleted
    Qt object and only warns; torch reports real failures (out of memory,
    shape errors) as RuntimeError, so they are wrapped to reach the user.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _guarded(generator: Generator[ProgressEvent, Any, Any]) -> Generator[ProgressEvent, Any, Any]:
    try:
        return (yield from generator)
    except RuntimeError as exc:
        raise _WorkFailed(exc) from exc


def report_error(exc: BaseException) -> None:
    """Show ``exc`` to the user: input errors as plain text, bugs with traceback."""
    if isinstance(
        exc, (TamaleInputError, ConfigError, FileNotFoundError, FileExistsError, PermissionError)
    ):
        show_error(str(exc))
    elif isinstance(exc, ValueError):
        show_error(str(exc))
    else:
        log.error("tamale: unexpected error", exc_info=exc)
        notification_manager.receive_error(type(exc), exc, exc.__traceback__)


class StatusLabel(Label):
    """A dock's status line whose whole text is also its tooltip: a long summary
    (object counts, an output path) that a narrow dock cuts off is read by hovering.
    (Word wrap was tried: docks squeezed into tabs then gave the label a few pixels
    of height and cut every line.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # take the dock's whole width, whatever text was shown first (with its own size
        # hint the label kept the width of "starting..." and cut the summary after it)
        self.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    @property
    def value(self) -> str:
        return super().value

    @value.setter
    def value(self, text: str) -> None:
        Label.value.fset(self, text)  # type: ignore[attr-defined]
        self.tooltip = str(text) or None


class TaskRunner(Container):
    """Run / Cancel buttons, a progress bar and a status line for one dock.

    Parameters
    ----------
    run_text : str
        Label of the Run button.
    tooltip : str
        Tooltip of the Run button.

    The dock connects ``runner.run_button.changed`` to its own method, which
    reads the controls, validates them and calls :meth:`start`.
    """

    def __init__(self, run_text: str = "Run", tooltip: str = "") -> None:
        self.run_button = PushButton(text=run_text, tooltip=tooltip)
        self.cancel_button = PushButton(
            text="Cancel", enabled=False, tooltip="Stop the running task (nothing is half-written)"
        )
        self.progress_bar = ProgressBar(value=0, min=0, max=1, visible=False, label="")
        self.status = StatusLabel(value="")
        buttons = Container(
            layout="horizontal", widgets=[self.run_button, self.cancel_button], labels=False
        )
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[buttons, self.progress_bar, self.status], labels=False)
        self.margins = (0, 0, 0, 0)
        self.worker: GeneratorWorker | None = None
        self._token: CancelToken | None = None
        self._pbar: napari_progress | None = None
        self._stage: str | None = None
        self._started = 0.0
        self._cooperative = False
        self.last_error: BaseException | None = None
        self.cancel_button.changed.connect(self.cancel)
        # a dock closed while its task runs: stop the task, touch no deleted widget
        self.native.destroyed.connect(self._on_destroyed)
        self._alive = True

    # -- state -----------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a task is running."""
        return self.worker is not None

    # -- control ---------------------------------------------------------
    def start(
        self,
        work: WorkFactory,
        *,
        on_result: Callable[[Any], None] | None = None,
        description: str = "tamale",
        on_finished: Callable[[], None] | None = None,
        on_event: Callable[[ProgressEvent], None] | None = None,
        cooperative_cancel: bool = False,
    ) -> GeneratorWorker | None:
        """Run ``work(cancel_token)`` in a thread worker.

        Parameters
        ----------
        work : callable
            Takes a :class:`CancelToken`, returns a work generator.
        on_result : callable, optional
            Called on the GUI thread with the generator's return value.
        description : str
            Shown in napari's activity panel.
        on_finished : callable, optional
            Called on the GUI thread when the task ends in any way.
        on_event : callable, optional
            Called on the GUI thread with every :class:`ProgressEvent` (connected before
            the worker starts, so no event is missed).
        cooperative_cancel : bool
            Cancel only sets the :class:`CancelToken` and lets the work end itself (it
            raises :class:`Cancelled` after tidying up, e.g. writing a checkpoint); by
            default the worker is also stopped at its next yield.

        Returns None (and notifies) if a task is already running.
        """
        if self.busy:
            show_info("A task is already running in this dock; cancel it or wait.")
            return None
        self._token = token = CancelToken()
        self.last_error = None
        try:
            generator = work(token)
        except Exception as exc:  # validation before any work started
            self.last_error = exc
            report_error(exc)
            return None
        worker = create_worker(_guarded, generator, _start_thread=False, _ignore_errors=True)
        self.worker = worker
        self._stage = None
        self._started = time.monotonic()
        self._pbar = napari_progress(total=0, desc=description)
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.progress_bar.visible = True
        self.progress_bar.max = 0  # busy indicator until the first event
        self.status.value = "starting..."

        worker.yielded.connect(self._on_event)
        if on_event is not None:
            worker.yielded.connect(on_event)
        self._cooperative = cooperative_cancel
        if on_result is not None:
            worker.returned.connect(on_result)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_error)
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        if on_finished is not None:
            worker.finished.connect(on_finished)
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running task to stop."""
        if self._token is not None:
            self._token.cancel()
        if self.worker is not None:
            if not self._cooperative:
                self.worker.quit()
            self.status.value = "cancelling..."

    # -- signal handlers (GUI thread) ------------------------------------
    def _on_destroyed(self, *_args: object) -> None:
        self._alive = False
        if self._token is not None:
            self._token.cancel()
        if self.worker is not None:
            self.worker.quit()

    def _ui(self) -> contextlib.AbstractContextManager[None]:
        """Context for widget updates: skipped quietly once the widgets are deleted."""
        return contextlib.suppress(RuntimeError)

    def _on_event(self, event: object) -> None:
        if not isinstance(event, ProgressEvent) or not self._alive or self.worker is None:
            return
        with self._ui():
            self._show_event(event)

    def _show_event(self, event: ProgressEvent) -> None:
        total = event.total or 0
        # text and dock bar first: napari's progress widgets call processEvents(),
        # so later events (and the result) may be handled inside _pbar.refresh()
        text = event.message or event.stage
        if total:
            text = f"{text} ({event.step}/{total})"
            eta = self._eta(event)
            if eta:
                text += f", {eta} left"
        self.status.value = text
        self.progress_bar.max = max(total, 0)
        self.progress_bar.value = min(event.step, total) if total else 0
        pbar = self._pbar
        if event.stage != self._stage:
            self._stage = event.stage
            if pbar is not None:
                pbar.set_description(event.stage)
        if pbar is not None and self._pbar is pbar:  # not closed meanwhile
            pbar.total = total
            pbar.n = min(event.step, total) if total else event.step
            pbar.refresh()

    def _eta(self, event: ProgressEvent) -> str:
        frac = event.fraction
        if not frac or frac >= 1.0:
            return ""
        elapsed = time.monotonic() - self._started
        if elapsed < 2.0:
            return ""
        remaining = elapsed * (1 - frac) / frac
        return f"{remaining:.0f} s" if remaining < 120 else f"{remaining / 60:.1f} min"

    def _on_returned(self, _value: object) -> None:
        with self._ui():
            self.status.value = f"done in {time.monotonic() - self._started:.1f} s"

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, _WorkFailed):
            exc = exc.original
        if isinstance(exc, Cancelled):
            with self._ui():
                self.status.value = "cancelled"
            return
        self.last_error = exc
        with self._ui():
            self.status.value = f"failed: {exc}"
        report_error(exc)

    def _on_aborted(self) -> None:
        with self._ui():
            self.status.value = "cancelled"

    def _on_finished(self) -> None:
        self.worker = None
        self._token = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if not self._alive:
            return
        with self._ui():
            self.run_button.enabled = True
            self.cancel_button.enabled = False
            self.progress_bar.visible = False
