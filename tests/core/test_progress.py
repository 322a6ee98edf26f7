from __future__ import annotations

import threading
import time

import pytest

from tamale.progress import (
    Cancelled,
    CancelToken,
    ProgressEvent,
    Throttle,
    check,
    drain,
    run_in_thread,
)


def count_to(n: int, cancel: CancelToken | None = None):
    total = 0
    for i in range(n):
        check(cancel)
        total += i
        yield ProgressEvent("count", i + 1, n, message=f"item {i}")
    return total


def test_drain_returns_the_generator_result_and_forwards_events():
    seen: list[ProgressEvent] = []
    assert drain(count_to(4), progress=seen.append) == 0 + 1 + 2 + 3
    assert [e.step for e in seen] == [1, 2, 3, 4]
    assert all(e.total == 4 and e.stage == "count" for e in seen)
    assert seen[-1].fraction == 1.0


def test_drain_stops_when_the_token_is_cancelled():
    token = CancelToken()
    seen: list[int] = []

    def on_event(e: ProgressEvent) -> None:
        seen.append(e.step)
        if e.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        drain(count_to(10), progress=on_event, cancel=token)
    assert seen == [1, 2]


def test_work_checks_the_token_between_units():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        drain(count_to(3, cancel=token))


def test_nested_work_forwards_inner_events_and_result():
    def outer():
        a = yield from count_to(3)
        b = yield from count_to(2)
        return a + b

    seen: list[str] = []
    assert drain(outer(), progress=lambda e: seen.append(f"{e.step}/{e.total}")) == 3 + 1
    assert seen == ["1/3", "2/3", "3/3", "1/2", "2/2"]


def test_fraction_is_none_without_total():
    assert ProgressEvent("x", 3, None).fraction is None
    assert ProgressEvent("x", 1, 4).fraction == 0.25


def callback_work(n: int, *, progress, cancel: CancelToken, fail_at: int | None = None):
    for i in range(n):
        cancel.raise_if_cancelled()
        if i == fail_at:
            raise RuntimeError("boom")
        progress(ProgressEvent("train", i + 1, n))
        time.sleep(0.001)
    return "trained"


def test_run_in_thread_yields_every_event_in_order_and_returns():
    seen: list[int] = []
    result = drain(
        run_in_thread(callback_work, 20, stage="train"), progress=lambda e: seen.append(e.step)
    )
    assert result == "trained"
    assert seen == list(range(1, 21))


def test_run_in_thread_reraises_errors_from_the_function():
    with pytest.raises(RuntimeError, match="boom"):
        drain(run_in_thread(callback_work, 5, fail_at=3))


def test_closing_run_in_thread_cancels_the_function_and_joins_it():
    token = CancelToken()
    started = threading.Event()

    def forever(*, progress, cancel):
        started.set()
        while True:
            cancel.raise_if_cancelled()
            progress(ProgressEvent("spin", 0, None))
            time.sleep(0.01)

    gen = run_in_thread(forever, cancel=token)
    next(gen)
    assert started.is_set()
    gen.close()
    assert token.cancelled
    assert not any(t.name == "tamale-work" and t.is_alive() for t in threading.enumerate())


def test_throttle_lets_the_first_call_through_then_waits():
    t = Throttle(interval=10.0)
    assert t.ready() is True
    assert t.ready() is False
