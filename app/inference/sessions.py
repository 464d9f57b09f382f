"""ONNX Runtime models for serving, and the per-process cache of loaded ones.

A deployment's ONNX file is read from blob storage once per process and kept in an LRU cache
keyed by its storage key (a re-export gets a new key, so a stale session is never served).
Each cached model owns a ``MicroBatcher``, so concurrent requests share session calls.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from app.inference.batching import DEFAULT_MAX_BATCH, MicroBatcher
from app.inference.preprocess import preprocess

METADATA_KEY = "polytag"
DEFAULT_CAPACITY = 4


def available_providers() -> list[str]:
    """ONNX Runtime execution providers to use: CUDA first when this build has it."""
    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have]


class OnnxModel:
    """An exported Polytag model: normalised (N, 3, S, S) float32 in, (N, labels) scores out."""

    def __init__(
        self,
        model: bytes | str,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        intra_op_threads: int = 0,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads  # 0 = one per physical core
        self.session = ort.InferenceSession(
            model, sess_options=options, providers=available_providers()
        )
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name
        self.metadata: dict[str, Any] = json.loads(
            self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}")
        )
        size = self.metadata.get("input_size", model_input.shape[-1])
        if not isinstance(size, int):
            raise ValueError("the ONNX model declares no fixed input size")
        self.input_size = size
        self.batcher = MicroBatcher(self._run, max_batch=max_batch)

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        (scores,) = self.session.run([self.output_name], {self.input_name: inputs})
        return np.asarray(scores, dtype=np.float32)

    def scores(self, inputs: np.ndarray) -> np.ndarray:
        """Scores of a normalised input batch, run through the micro-batcher."""
        if len(inputs) == 0:
            return np.zeros((0, self.session.get_outputs()[0].shape[-1]), dtype=np.float32)
        return self.batcher.run(np.ascontiguousarray(inputs, dtype=np.float32))

    def run_direct(self, inputs: np.ndarray) -> np.ndarray:
        """Scores of a normalised batch in the calling thread (batch jobs, benchmarks)."""
        return self._run(np.ascontiguousarray(inputs, dtype=np.float32))

    def predict(self, images: Sequence[bytes | Image.Image]) -> np.ndarray:
        """Scores (N, labels) of images, preprocessed exactly as in training."""
        if not images:
            return self.scores(np.zeros((0, 3, self.input_size, self.input_size), np.float32))
        batch = np.stack([preprocess(image, self.input_size) for image in images])
        return self.scores(batch)

    def close(self) -> None:
        """Stop the batching thread (queued requests finish first)."""
        self.batcher.close()


class ModelCache:
    """Loaded models by key, least recently used dropped past ``capacity``."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._models: OrderedDict[str, OnnxModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str, load: Callable[[], bytes]) -> OnnxModel:
        """The model stored under ``key``, loading its bytes with ``load`` on first use."""
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            key_lock = self._loading.setdefault(key, threading.Lock())
        # One loader per key; others wait for it instead of loading the same file again.
        with key_lock:
            with self._lock:
                model = self._models.get(key)
            if model is None:
                model = OnnxModel(load())
                self._store(key, model)
        with self._lock:
            self._loading.pop(key, None)
        return model

    def _store(self, key: str, model: OnnxModel) -> None:
        evicted: list[OnnxModel] = []
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.capacity:
                _old_key, old = self._models.popitem(last=False)
                evicted.append(old)
        for old in evicted:
            old.close()

    def discard(self, key: str) -> None:
        """Unload one model (its deployment was deleted or re-exported)."""
        with self._lock:
            model = self._models.pop(key, None)
        if model is not None:
            model.close()

    def clear(self) -> None:
        """Unload every model."""
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
        for model in models:
            model.close()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._models


models = ModelCache()
