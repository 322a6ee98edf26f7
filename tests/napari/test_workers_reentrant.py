"""napari's progress bar may process pending Qt events while it redraws; a progress
event handled that way must not overwrite the final status ("done in ...")."""

from __future__ import annotations

import time

from napari.utils import progress as napari_progress
from qtpy.QtWidgets import QApplication

import tamale_napari._workers as workers
from tamale.progress import ProgressEvent
from tamale_napari._workers import TaskRunner


class ReentrantProgress(napari_progress):
    """Lets the worker finish, then processes the queued events, as a redraw can."""

    def set_description(self, desc):
        time.sleep(0.2)
        QApplication.processEvents()
        return super().set_description(desc)


def stages(token):
    yield ProgressEvent("one", 1, 2, message="first")
    yield ProgressEvent("one", 2, 2, message="second")
    return "ok"


def test_an_event_handled_last_does_not_overwrite_done(qtbot, monkeypatch):
    monkeypatch.setattr(workers, "napari_progress", ReentrantProgress)
    runner = TaskRunner("Go")
    qtbot.addWidget(runner.native)
    results = []
    runner.start(stages, on_result=results.append)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    qtbot.wait(300)
    assert results == ["ok"]
    assert runner.status.value.startswith("done in"), runner.status.value
