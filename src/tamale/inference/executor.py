"""Run 3D inference tasks in this process or on a Dask cluster -- one mechanism.

A task is a work generator function plus its arguments. :class:`InlineExecutor`
drains tasks one after the other in the calling thread and forwards their
progress events (per slice). :class:`DaskExecutor` submits them to a Dask
``distributed`` cluster -- a ``LocalCluster`` with one worker per GPU, or any
scheduler address -- and reports progress per finished task (per slab).
Cancelling stops at the next event (inline) or cancels the outstanding
futures (Dask); either way the run's store is left incomplete and resumable.

The cluster is optional (``pip install 'tamale[distributed]'``); nothing here
changes the process-wide multiprocessing start method.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tamale.errors import TamaleInputError
from tamale.progress import Cancelled, CancelToken, ProgressEvent, Work, check, drain

__all__ = [
    "DaskExecutor",
    "InlineExecutor",
    "Task",
    "open_executor",
]


@dataclass(frozen=True)
class Task:
    """A work generator function and its arguments (picklable for Dask)."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    weight: int = 1
    """Units of progress this task stands for (e.g. slices of a slab)."""


def _run_task(func: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Drain one task on a Dask worker; returns (worker name, result).

    The task's arguments are passed at the top level so that Dask replaces
    futures among them (a scattered input volume) by their values.
    """
    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):  # pragma: no cover
        worker = "?"
    gen = func(*args, **kwargs)
    if hasattr(gen, "__next__"):
        return worker, drain(gen)
    return worker, gen


def worker_device() -> str | None:
    """The GPU a Dask worker should use (worker ``k`` of a local cluster: GPU ``k``).

    None outside a Dask worker, or without CUDA: the model then picks its device.
    """
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return None
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    if not torch.cuda.is_available():
        return None
    index = int(name) if str(name).isdigit() else sum(map(ord, str(name)))
    return f"cuda:{index % torch.cuda.device_count()}"


class InlineExecutor:
    """Runs tasks one by one in the calling thread, forwarding per-slice progress."""

    n_workers = 1
    description = "this process"

    def __init__(self, cancel: CancelToken | None = None) -> None:
        self.cancel = cancel
        self.workers_used = {"this process"}

    def run(
        self, tasks: Sequence[Task], stage: str, on_result: Callable[[int, Any], None] | None = None
    ) -> Work[list[Any]]:
        total = sum(t.weight for t in tasks)
        done = 0
        results = []
        for k, task in enumerate(tasks):
            check(self.cancel)
            gen = task.func(*task.args, **task.kwargs)
            if hasattr(gen, "__next__"):
                step = 0
                try:
                    while True:
                        event = next(gen)
                        check(self.cancel)
                        step = min(event.step, task.weight) if event.total else step
                        yield ProgressEvent(stage, done + step, total, event.message)
                except StopIteration as stop:
                    value = stop.value
            else:
                value = gen
            done += task.weight
            results.append(value)
            if on_result is not None:
                on_result(k, value)
            yield ProgressEvent(stage, done, total)
        return results

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs tasks on a Dask cluster; progress per finished task."""

    def __init__(self, client: Any, cluster: Any = None, cancel: CancelToken | None = None) -> None:
        self.client = client
        self.cluster = cluster
        self.cancel = cancel
        self.description = f"Dask scheduler {client.scheduler.address}"
        self.workers_used: set[str] = set()

    @property
    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(
        self, tasks: Sequence[Task], stage: str, on_result: Callable[[int, Any], None] | None = None
    ) -> Work[list[Any]]:
        from distributed import as_completed

        total = sum(t.weight for t in tasks)
        if not tasks:
            return []
        yield ProgressEvent(stage, 0, total, f"{len(tasks)} tasks on {self.n_workers} workers")
        futures = [
            self.client.submit(
                _run_task,
                t.func,
                *t.args,
                **t.kwargs,
                pure=False,
                key=f"tamale-{stage}-{k}-{time.monotonic_ns()}",
            )
            for k, t in enumerate(tasks)
        ]
        index = {f.key: k for k, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        done = 0
        pending = as_completed(futures)
        try:
            while not pending.is_empty():
                if self.cancel is not None and self.cancel.cancelled:
                    raise Cancelled("cancelled by the user")
                finished = pending.next_batch(block=False)
                if not finished:
                    time.sleep(0.05)
                    continue
                for fut in finished:
                    k = index[fut.key]
                    worker, results[k] = fut.result()
                    self.workers_used.add(worker)
                    done += tasks[k].weight
                    if on_result is not None:
                        on_result(k, results[k])
                    yield ProgressEvent(stage, done, total, f"{stage}: task {k + 1} done")
        except BaseException:
            self.client.cancel(futures)
            raise
        return results

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover
        return 0


@contextlib.contextmanager
def open_executor(
    scheduler: str | None,
    *,
    n_workers: int | None = None,
    processes: bool = True,
    timeout: float = 10.0,
    cancel: CancelToken | None = None,
) -> Iterator[InlineExecutor | DaskExecutor]:
    """The executor for ``scheduler``.

    Parameters
    ----------
    scheduler : None, "local" or an address
        None: this process. ``"local"``: a new ``LocalCluster`` with one
        worker per GPU (or ``n_workers``), closed afterwards. Anything else is
        the address of a running Dask scheduler (``tcp://host:8786``).
    timeout : float
        Seconds to wait for the scheduler to answer.
    """
    if scheduler is None or scheduler == "":
        yield InlineExecutor(cancel)
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise TamaleInputError(
            "running on a Dask cluster needs the 'distributed' package: "
            "pip install 'tamale[distributed]'"
        ) from None
    cluster = None
    if scheduler == "local":
        workers = n_workers or max(1, _gpu_count())
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise TamaleInputError(
                f"could not reach the Dask scheduler at {scheduler} within {timeout:g} s ({exc}); "
                "check the address and that the scheduler is running"
            ) from None
        except ValueError as exc:
            raise TamaleInputError(
                f"{scheduler!r} is not a Dask scheduler address: {exc}"
            ) from None
    executor = DaskExecutor(client, cluster, cancel)
    try:
        yield executor
    finally:
        executor.close()
