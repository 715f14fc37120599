"""Server-side batching like TF Serving's BasicBatchScheduler + BatchingSession.

Concurrent requests for one signature join the open batch until it holds ``max_batch_size`` rows or
``batch_timeout_micros`` passed since its first request; ``num_batch_threads`` threads run batches.
At most ``max_enqueued_batches`` batches wait (more -> UNAVAILABLE). A batch is padded up to the
next ``allowed_batch_sizes`` entry by repeating its first row, and the outputs are split back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import grpc
import numpy as np

from pytest_tfserving.embedded import metrics as m
from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.serving.spec import BatchingSpec

DEFAULT_MAX_ENQUEUED_BATCHES = 10  # BasicBatchScheduler::Options default
Runner = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    size: int
    key: tuple[object, ...]
    enqueued: float
    future: Future[dict[str, np.ndarray]] = field(default_factory=Future)


@dataclass
class _Batch:
    signature: str
    key: tuple[object, ...]
    deadline: float
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    closed: bool = False


def _task_key(signature: str, inputs: dict[str, np.ndarray]) -> tuple[object, ...]:
    """Tasks merge only when every input has the same dtype and non-batch dimensions."""
    return (signature, *sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))


class Batcher:
    """One batching queue per loaded model version (TF Serving keeps one per servable and signature)."""

    def __init__(
        self, spec: BatchingSpec, run: Runner, metrics: m.Metrics, thread_pool_name: str, threads: int
    ) -> None:
        self.spec = spec
        self._run = run
        self._metrics = metrics
        self._pool_name = thread_pool_name
        self._max_enqueued = spec.max_enqueued_batches or DEFAULT_MAX_ENQUEUED_BATCHES
        self._timeout_s = spec.batch_timeout_micros / 1e6
        self._cond = threading.Condition()
        self._batches: deque[_Batch] = deque()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{thread_pool_name}-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue one request and wait for its rows of the batch result."""
        sizes = {v.shape[0] if v.ndim else -1 for v in inputs.values()}
        if len(sizes) != 1 or -1 in sizes:
            raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        if size > self.spec.max_batch_size:
            raise invalid(
                f"Task size {size} is larger than maximum input batch size {self.spec.max_batch_size}"
            )
        now = time.monotonic()
        task = _Task(inputs, size, _task_key(signature, inputs), now)
        with self._cond:
            if self._stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "Batch scheduler is shutting down")
            last = self._batches[-1] if self._batches else None
            if (
                last is None
                or last.closed
                or last.key != task.key
                or last.size + size > self.spec.max_batch_size
            ):
                if last is not None:
                    last.closed = True
                if len(self._batches) >= self._max_enqueued:
                    raise ServingError(
                        grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full",
                    )
                last = _Batch(signature, task.key, now + self._timeout_s)
                self._batches.append(last)
            last.tasks.append(task)
            last.size += size
            if last.size >= self.spec.max_batch_size:
                last.closed = True
            self._cond.notify()
        self._metrics.observe(m.INPUT_BATCH_SIZE, size)
        return task.future.result()

    def _next_batch(self) -> _Batch | None:
        with self._cond:
            while not self._stopped:
                if self._batches:
                    head = self._batches[0]
                    wait = head.deadline - time.monotonic()
                    if head.closed or wait <= 0:
                        return self._batches.popleft()
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._process(batch)

    def _padded_size(self, size: int) -> int:
        for allowed in self.spec.allowed_batch_sizes:
            if allowed >= size:
                return allowed
        return size

    def _process(self, batch: _Batch) -> None:
        start = time.monotonic()
        for task in batch.tasks:
            self._metrics.observe(m.QUEUING_LATENCY, (start - task.enqueued) * 1e6, self._pool_name)
        try:
            names = list(batch.tasks[0].inputs)
            if len(batch.tasks) == 1:
                merged = dict(batch.tasks[0].inputs)
            else:
                merged = {k: np.concatenate([t.inputs[k] for t in batch.tasks]) for k in names}
            padded = self._padded_size(batch.size)
            if padded > batch.size:
                merged = {
                    k: np.concatenate([v, np.repeat(v[:1], padded - batch.size, axis=0)])
                    for k, v in merged.items()
                }
                self._metrics.observe(m.PADDING_SIZE, padded - batch.size, str(padded))
            self._metrics.observe(m.PROCESSED_BATCH_SIZE, padded)
            self._metrics.count(m.WRAPPED_RUN_COUNT)
            outputs = self._run(batch.signature, merged)
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise ServingError(
                        grpc.StatusCode.INTERNAL,
                        f"Batched output {name} has 0th dimension {value.shape[:1]}, expected {padded}",
                    )
            offset = 0
            for task in batch.tasks:
                task.future.set_result({k: v[offset : offset + task.size] for k, v in outputs.items()})
                offset += task.size
        except BaseException as exc:
            error = exc if isinstance(exc, ServingError) else ServingError(grpc.StatusCode.INTERNAL, str(exc))
            for task in batch.tasks:
                if not task.future.done():
                    task.future.set_exception(error)

    def stop(self) -> None:
        """Refuse new work, fail what waits, let running batches finish."""
        with self._cond:
            self._stopped = True
            pending = list(self._batches)
            self._batches.clear()
            self._cond.notify_all()
        for batch in pending:
            for task in batch.tasks:
                task.future.set_exception(
                    ServingError(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
                )
