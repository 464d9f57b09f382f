"""ONNX export: dynamic batch, metadata, and parity with PyTorch within 1e-4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from app.inference.preprocess import preprocess
from worker.training.export import export_onnx, read_onnx_metadata, verify_onnx


def test_export_matches_pytorch_and_describes_itself(finished_run: Any, tmp_path: Path) -> None:
    checkpoint_path = finished_run.directory / "best.pt"
    onnx_path = tmp_path / "model.onnx"

    metadata = export_onnx(checkpoint_path, onnx_path)

    assert verify_onnx(checkpoint_path, onnx_path) < 1e-4
    assert metadata == read_onnx_metadata(onnx_path)
    assert metadata["label_keys"] == ["red", "green", "blue", "white"]
    assert metadata["input_size"] == 32 and metadata["arch"] == "hgnetv2_b0"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_exported_model_serves_any_batch_size_with_the_training_scores(
    finished_run: Any, tmp_path: Path
) -> None:
    checkpoint_path = finished_run.directory / "best.pt"
    export_onnx(checkpoint_path, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    val = finished_run.data.val
    inputs = np.stack([preprocess(val.open_image(i), 32) for i in range(5)])

    (batch,) = session.run(["scores"], {"input": inputs})
    (single,) = session.run(["scores"], {"input": inputs[:1]})

    assert batch.shape == (5, 4) and single.shape == (1, 4)
    np.testing.assert_allclose(single[0], batch[0], atol=1e-5)
    trained_scores = finished_run.result.evaluations["val"].scores[:5]
    assert np.max(np.abs(batch - trained_scores)) < 1e-4
    assert verify_onnx(checkpoint_path, tmp_path / "model.onnx", inputs) < 1e-4
