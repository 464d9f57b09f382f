"""A deployment's files beside its ONNX model, and the downloadable bundle.

``labels.json`` (outputs in order), ``thresholds.json`` (per label, predicted when
score >= threshold), ``preprocessing.json`` and, in the bundle, a README of the input format.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from app.errors import Conflict, InvalidInput
from app.models import Deployment
from app.storage import BlobStore

VARIANTS = ("fp32", "int8")


def prefix(deployment: Deployment) -> str:
    """The storage folder of a deployment's files."""
    return f"projects/{deployment.project_id}/deployments/{deployment.id}/"


def labels_document(deployment: Deployment) -> dict[str, Any]:
    """labels.json: the model's outputs in order."""
    return {
        "deployment_id": deployment.id,
        "version": deployment.version,
        "labels": [{"index": i, **label} for i, label in enumerate(deployment.labels)],
    }


def thresholds_document(deployment: Deployment) -> dict[str, Any]:
    """thresholds.json: per-label thresholds (predicted when score >= threshold)."""
    return {
        "rule": "predicted when score >= threshold",
        "thresholds": {
            str(label["name"]): float(value)
            for label, value in zip(deployment.labels, deployment.thresholds, strict=True)
        },
        "by_index": [float(value) for value in deployment.thresholds],
    }


def write_sidecar_files(*, store: BlobStore, deployment: Deployment) -> None:
    """Write labels.json, thresholds.json and preprocessing.json beside the ONNX file."""
    folder = prefix(deployment)
    documents = {
        "labels.json": labels_document(deployment),
        "thresholds.json": thresholds_document(deployment),
        "preprocessing.json": deployment.preprocessing,
    }
    for name, document in documents.items():
        store.put(folder + name, json.dumps(document, indent=2).encode(), "application/json")


def readme(deployment: Deployment, variant: str) -> str:
    """README.md of a bundle: the input format, the output and the threshold rule."""
    pre = deployment.preprocessing
    size = pre.get("input_size")
    mean, std = pre.get("mean"), pre.get("std")
    quantized = "dynamic INT8 (weights quantized)" if variant == "int8" else "float32"
    return f"""# {deployment.name} (deployment {deployment.id}, version {deployment.version})

`model.onnx` ({quantized}, ONNX opset 17) scores {len(deployment.labels)} tags of one image.

## Input
`input`: float32, shape (N, 3, {size}, {size}), N any batch size. For each image:
1. Apply the EXIF orientation and convert to RGB.
2. Resize to {size}x{size} pixels, bilinear, without cropping or keeping the aspect ratio.
3. Scale to [0, 1] (divide by 255), subtract mean {mean}, divide by std {std} (per channel,
   RGB order), and lay out channels first (3, {size}, {size}).

## Output
`scores`: float32, shape (N, {len(deployment.labels)}): sigmoid probabilities in the order of
`labels.json`.

## Thresholds
A tag is predicted when its score >= its threshold in `thresholds.json`.
"""


def bundle(*, store: BlobStore, deployment: Deployment, variant: str = "fp32") -> bytes:
    """A zip of model.onnx, labels.json, thresholds.json, preprocessing.json and README.md."""
    if variant not in VARIANTS:
        raise InvalidInput(f"variant must be one of {', '.join(VARIANTS)}, not '{variant}'")
    if deployment.status != "live" or not deployment.onnx_key:
        raise Conflict(f"deployment {deployment.id} is {deployment.status}; no model to download")
    key = deployment.onnx_key
    if variant == "int8":
        if not deployment.int8_key:
            raise Conflict(f"deployment {deployment.id} has no INT8 model yet: build it first")
        key = deployment.int8_key
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.onnx", store.read_bytes(key))
        archive.writestr("labels.json", json.dumps(labels_document(deployment), indent=2))
        archive.writestr("thresholds.json", json.dumps(thresholds_document(deployment), indent=2))
        archive.writestr("preprocessing.json", json.dumps(deployment.preprocessing, indent=2))
        archive.writestr("README.md", readme(deployment, variant))
    return buffer.getvalue()
