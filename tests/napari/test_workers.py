"""The one adapter from engine work to a dock: progress, result, cancel, errors."""

from __future__ import annotations

import time

import pytest
from napari.utils.notifications import notification_manager

from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressEvent
from tamale_napari._workers import TaskRunner


def counting(n: int, token: CancelToken, delay: float = 0.0):
    for i in range(n):
        token.raise_if_cancelled()
        time.sleep(delay)
        yield ProgressEvent("count", i + 1, n, message="counting")
    return n * 10


@pytest.fixture
def runner(qtbot):
    r = TaskRunner("Go")
    qtbot.addWidget(r.native)
    return r


def test_result_arrives_on_the_gui_thread_and_bar_was_determinate(runner, qtbot):
    results, maxima = [], []
    runner.progress_bar.changed.connect(lambda v: maxima.append(runner.progress_bar.max))
    runner.start(lambda tok: counting(5, tok, 0.01), on_result=results.append)
    assert runner.busy and not runner.run_button.enabled and runner.cancel_button.enabled
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert results == [50]
    assert 5 in maxima
    assert not runner.busy and runner.run_button.enabled and not runner.cancel_button.enabled
    assert runner.status.value.startswith("done in")


def test_cancel_stops_the_work_and_restores_the_buttons(runner, qtbot):
    results = []
    runner.start(lambda tok: counting(10_000, tok, 0.005), on_result=results.append)
    qtbot.waitUntil(lambda: runner.progress_bar.value > 2, timeout=10_000)
    runner.cancel_button.clicked.emit()  # what a user's click emits
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert results == []
    assert runner.status.value == "cancelled"
    assert runner.run_button.enabled and not runner.busy


def test_input_errors_become_plain_notifications(runner, qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)

    def bad(tok):
        yield ProgressEvent("check", 0, 1)
        raise TamaleInputError("patch size 300 is larger than the image (256 x 256)")

    runner.start(bad)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert shown == ["patch size 300 is larger than the image (256 x 256)"]
    assert isinstance(runner.last_error, TamaleInputError)
    assert runner.status.value.startswith("failed:")


def test_errors_before_the_work_starts_are_reported_and_nothing_runs(runner, monkeypatch):
    shown = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)

    def validate_first(tok):
        raise TamaleInputError("choose a labels layer")

    assert runner.start(validate_first) is None
    assert shown == ["choose a labels layer"] and not runner.busy


def test_unexpected_errors_keep_their_traceback(runner, qtbot, monkeypatch):
    received = []
    monkeypatch.setattr(notification_manager, "receive_error", lambda *a: received.append(a))

    def broken(tok):
        yield ProgressEvent("x", 0, 1)
        raise RuntimeError("a bug")

    runner.start(broken)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert received and received[0][0] is RuntimeError and received[0][2] is not None


def test_a_second_start_while_busy_is_refused(runner, qtbot):
    runner.start(lambda tok: counting(200, tok, 0.005))
    assert runner.start(lambda tok: counting(1, tok)) is None
    runner.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)


def test_closing_the_dock_cancels_its_task_quietly(qtbot):
    runner = TaskRunner("Go")
    tokens: list[CancelToken] = []

    def long_work(tok):
        tokens.append(tok)
        return counting(100_000, tok, 0.002)

    worker = runner.start(long_work)
    qtbot.waitUntil(lambda: runner.progress_bar.value > 1, timeout=10_000)
    finished = []
    worker.finished.connect(lambda: finished.append(True))
    runner.native.deleteLater()  # the user closes the dock
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert tokens[0].cancelled


def test_long_status_lines_are_the_tooltip(runner, qtbot):
    text = "3D done: 1234 mitochondria in 512 slices, written to /data/run/a_long_name.zarr"
    runner.status.value = text
    assert runner.status.value == text
    assert runner.status.tooltip == text
    runner.status.value = ""
    assert not runner.status.tooltip


def test_the_status_line_takes_the_whole_width_whatever_was_shown_first(runner, qtbot):
    # with the label's own size hint, a dock kept the width of "starting..." and cut
    # "9 mitochondria in 0.3 s (cpu)" after "9 mitochondri"
    runner.native.resize(420, 200)
    runner.native.show()
    runner.status.value = "starting..."
    qtbot.wait(20)
    runner.status.value = "9 mitochondria in 0.3 s (cpu)"
    qtbot.wait(20)
    assert runner.status.native.width() >= 0.9 * runner.native.width()
