"""ONNX Runtime serving agrees with PyTorch through the shared preprocessing; batching and the
model cache behave."""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.inference.batching import MicroBatcher
from app.inference.preprocess import preprocess
from app.inference.sessions import ModelCache, OnnxModel
from tests.fixtures.evaluated import checkpoint_bytes, image_bytes, onnx_bytes
from worker.training.checkpoint import read_checkpoint
from worker.training.export import load_scoring_model

LABELS = ("11", "12", "13")


def _images() -> list[bytes]:
    """Real-world variety: PNG, JPEG, grayscale, RGBA, EXIF-rotated, odd sizes."""
    images = [image_bytes(1), image_bytes(2, (300, 200), "JPEG"), image_bytes(3, (17, 91))]
    gray = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(4))).convert("L").save(gray, format="PNG")
    rgba = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(5))).convert("RGBA").save(rgba, format="PNG")
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.open(io.BytesIO(image_bytes(6, (120, 40)))).save(rotated, format="JPEG", exif=exif)
    return [*images, gray.getvalue(), rgba.getvalue(), rotated.getvalue()]


@pytest.fixture(scope="module")
def exported() -> Iterator[tuple[torch.nn.Module, OnnxModel, int]]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "checkpoint.pt"
        path.write_bytes(checkpoint_bytes(LABELS, 0))
        checkpoint = read_checkpoint(path)
    model = OnnxModel(onnx_bytes(LABELS, 0))
    yield load_scoring_model(checkpoint), model, checkpoint.input_size
    model.close()


def test_onnx_matches_pytorch_through_shared_preprocess(exported) -> None:  # type: ignore[no-untyped-def]
    torch_model, onnx_model, size = exported
    images = _images()
    with torch.no_grad():
        expected = torch_model(
            torch.from_numpy(np.stack([preprocess(data, size) for data in images]))
        ).numpy()
    actual = onnx_model.predict(images)
    assert actual.shape == (len(images), len(LABELS))
    assert np.abs(actual - expected).max() <= 1e-4
    # Scores differ between images: the model sees the pixels, not a constant.
    assert np.ptp(actual[:, 0]) > 1e-4


def test_exif_orientation_is_applied_before_resizing(exported) -> None:  # type: ignore[no-untyped-def]
    _torch_model, onnx_model, size = exported
    source = Image.open(io.BytesIO(image_bytes(6, (120, 40))))
    upright = source.transpose(Image.Transpose.ROTATE_270)
    rotated = _images()[-1]
    assert preprocess(rotated, size).shape == (3, size, size)
    # The EXIF-rotated JPEG scores like the upright image (up to JPEG loss), not the sideways one.
    both = onnx_model.predict([upright, rotated])
    sideways = onnx_model.predict([Image.open(io.BytesIO(rotated)).convert("RGB")])
    assert np.abs(both[0] - both[1]).max() < np.abs(both[0] - sideways[0]).max() + 1e-3


def test_model_metadata_and_batch_shapes(exported) -> None:  # type: ignore[no-untyped-def]
    _torch_model, onnx_model, size = exported
    assert onnx_model.input_size == size
    assert onnx_model.metadata["label_keys"] == list(LABELS)
    assert onnx_model.predict([]).shape == (0, len(LABELS))
    batch = np.stack([preprocess(data, size) for data in _images()[:3]])
    assert np.allclose(onnx_model.scores(batch), onnx_model.run_direct(batch), atol=1e-6)


def test_micro_batcher_merges_concurrent_requests() -> None:
    started, gate = threading.Event(), threading.Event()
    sizes: list[int] = []

    def run_batch(inputs: np.ndarray) -> np.ndarray:
        started.set()
        gate.wait(5)  # hold the first call so the others queue up behind it
        sizes.append(len(inputs))
        return inputs * 2

    batcher = MicroBatcher(run_batch, max_batch=64)
    first = batcher.submit(np.array([[1.0]]))
    assert started.wait(5)
    rest = [batcher.submit(np.array([[float(i)], [float(i) + 0.5]])) for i in range(2, 7)]
    gate.set()
    assert first.result(5).tolist() == [[2.0]]
    for i, future in enumerate(rest, start=2):
        assert future.result(5).tolist() == [[2.0 * i], [2.0 * i + 1.0]]
    assert sizes == [1, 10], "the five queued requests ran as one batch"
    assert batcher.calls == 2
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.submit(np.zeros((1, 1)))


def test_micro_batcher_reports_errors_to_every_caller() -> None:
    def broken(inputs: np.ndarray) -> np.ndarray:
        raise ValueError("bad input")

    batcher = MicroBatcher(broken)
    futures = [batcher.submit(np.zeros((1, 2))) for _ in range(3)]
    for future in futures:
        with pytest.raises(ValueError, match="bad input"):
            future.result(5)
    # The thread survives an error and serves the next request.
    assert batcher.submit(np.zeros((1, 2))).exception(5) is not None
    batcher.close()


def test_model_cache_loads_once_and_evicts_least_recently_used() -> None:
    loads: list[str] = []
    data = onnx_bytes(LABELS, 0)

    def loader(key: str):  # type: ignore[no-untyped-def]
        def load() -> bytes:
            loads.append(key)
            return data

        return load

    cache = ModelCache(capacity=2)
    a = cache.get("a", loader("a"))
    assert cache.get("a", loader("a")) is a
    cache.get("b", loader("b"))
    cache.get("a", loader("a"))  # a is now the most recently used
    cache.get("c", loader("c"))  # evicts b
    assert "b" not in cache and "a" in cache and "c" in cache
    assert loads == ["a", "b", "c"]
    cache.discard("a")
    assert "a" not in cache
    with pytest.raises(RuntimeError):
        a.scores(np.zeros((1, 3, a.input_size, a.input_size), np.float32))
    cache.clear()
