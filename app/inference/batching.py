"""Micro-batching: concurrent prediction requests share one ONNX Runtime call.

One thread per model runs the session. A request that arrives while the model is idle runs at
once (no waiting window, so a lone client pays no extra latency); requests that arrive while a
batch is running queue up and run together in the next call, up to ``max_batch`` images. Under
load this turns many batch-1 calls into a few larger ones, which CPU and GPU both run at a
higher throughput, and it keeps concurrent requests from fighting over the same cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

RunBatch = Callable[[np.ndarray], np.ndarray]
DEFAULT_MAX_BATCH = 32


@dataclass
class _Request:
    inputs: np.ndarray
    future: Future[np.ndarray] = field(default_factory=Future)


class MicroBatcher:
    """Runs ``run_batch`` on one thread, merging the inputs of requests that queued meanwhile."""

    def __init__(self, run_batch: RunBatch, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.calls = 0  # batches run so far: lets tests and benchmarks see merging happen

    def submit(self, inputs: np.ndarray) -> Future[np.ndarray]:
        """Queue an (n, ...) input batch; the future resolves to its (n, ...) outputs."""
        request = _Request(np.ascontiguousarray(inputs))
        with self._lock:
            if self._closed:
                raise RuntimeError("this model was unloaded; retry the request")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="polytag-batcher",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            self._queue.put(request)
        return request.future

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Submit and wait for the outputs."""
        return self.submit(inputs).result()

    def close(self) -> None:
        """Finish queued requests, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def _take_batch(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` plus whatever is already queued, up to ``max_batch`` images."""
        batch, size = [first], len(first.inputs)
        while size < self._max_batch:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request is None:
                return batch, True
            batch.append(request)
            size += len(request.inputs)
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._take_batch(first)
            try:
                inputs = (
                    batch[0].inputs
                    if len(batch) == 1
                    else np.concatenate([request.inputs for request in batch])
                )
                outputs = self._run_batch(inputs)
                self.calls += 1
            except BaseException as error:  # every waiting caller must hear of it
                for request in batch:
                    request.future.set_exception(error)
                continue
            start = 0
            for request in batch:
                end = start + len(request.inputs)
                request.future.set_result(outputs[start:end])
                start = end
