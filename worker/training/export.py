"""Export a checkpoint to ONNX for serving, and check ONNX Runtime agrees with PyTorch.

The exported graph takes the normalised float32 batch that ``app.inference.preprocess`` produces
(``input``: N x 3 x S x S, N dynamic) and returns sigmoid probabilities (``scores``: N x labels).
The model's label keys, names, input size and preprocessing ride along as ONNX metadata under
the ``polytag`` key, so a deployment needs nothing but the file.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from app.inference.preprocess import normalize_uint8_batch
from worker.training.checkpoint import Checkpoint, read_checkpoint
from worker.training.models import create_model

OPSET = 17
METADATA_KEY = "polytag"


class ScoringModel(nn.Module):
    """A classifier whose output is per-label probabilities instead of logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return sigmoid scores for normalised inputs."""
        return torch.sigmoid(self.model(inputs))


def load_scoring_model(checkpoint: Checkpoint) -> ScoringModel:
    """Rebuild the checkpoint's model on the CPU in eval mode, returning probabilities."""
    model = create_model(checkpoint.arch, len(checkpoint.label_keys), pretrained=False)
    model.load_state_dict(checkpoint.model_state)
    return ScoringModel(model).eval()


def export_onnx(
    checkpoint_path: str | os.PathLike[str], out_path: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write the checkpoint's model as ONNX (opset 17, dynamic batch); return its metadata."""
    checkpoint = read_checkpoint(checkpoint_path)
    model = load_scoring_model(checkpoint)
    size = checkpoint.input_size
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs the
        # onnxscript package; this one is available everywhere torch is and handles timm CNNs.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Strided slices in some timm models cannot be constant-folded: harmless, said thrice.
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        torch.onnx.export(
            model,
            (torch.zeros(2, 3, size, size),),
            str(temp),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["scores"],
            dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}},
        )
    metadata = {
        "arch": checkpoint.arch,
        "input_size": size,
        "label_keys": checkpoint.label_keys,
        "label_names": checkpoint.label_names,
        "step": checkpoint.step,
        "preprocess": checkpoint.preprocess,
        "output": "sigmoid scores",
    }
    graph = onnx.load(str(temp))
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(graph, str(temp))
    os.replace(temp, out)
    return metadata


def read_onnx_metadata(onnx_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the Polytag metadata stored in an exported ONNX file."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    data: dict[str, Any] = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    return data


def verify_onnx(
    checkpoint_path: str | os.PathLike[str],
    onnx_path: str | os.PathLike[str],
    inputs: np.ndarray | None = None,
    *,
    samples: int = 4,
    seed: int = 0,
) -> float:
    """Return the max |ONNX Runtime - PyTorch| score over ``inputs`` (default: random images).

    ``inputs`` are normalised float32 (N, 3, S, S) arrays, as ``preprocess`` returns them.
    """
    checkpoint = read_checkpoint(checkpoint_path)
    if inputs is None:
        size = checkpoint.input_size
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(samples, 3, size, size), dtype=np.uint8)
        inputs = normalize_uint8_batch(images)
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    with torch.no_grad():
        expected = load_scoring_model(checkpoint)(torch.from_numpy(inputs)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["scores"], {"input": inputs})
    return float(np.max(np.abs(np.asarray(actual) - expected)))
