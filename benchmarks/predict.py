"""Prediction speed: PyTorch eager vs ONNX Runtime in process, and the REST endpoint.

For each backbone (hgnetv2_b0 at 320 px and resnet50 at 224 px by default, random weights), in one
run: batch-1 latency and batch-16 throughput of PyTorch eager and of ONNX Runtime on the same
normalised inputs; the in-process cost of one image end to end (decode, shared preprocessing,
ONNX Runtime); then `POST /api/v1/deployments/{id}/predict` on a live uvicorn on loopback with 1
and 8 concurrent clients (p50/p95 latency, images/s). Prints JSON with the ratios the issue aims
at: ONNX Runtime >= 1.5x eager throughput, REST p50 <= in-process p50 + 5 ms.

    python benchmarks/predict.py                    # ~2-3 minutes on 2 CPU cores
    python benchmarks/predict.py --iters 50 --rest-requests 200 --archs resnet50
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N_LABELS = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=["hgnetv2_b0", "resnet50"])
    parser.add_argument("--iters", type=int, default=15, help="timed batch-1 calls per backend")
    parser.add_argument("--batches", type=int, default=2, help="timed batch-16 calls per backend")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rest-requests", type=int, default=32, help="requests per client count")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(times: list[float]) -> dict[str, float]:
    """p50/p95 in milliseconds."""
    return {
        "p50_ms": round(percentile(times, 50) * 1e3, 2),
        "p95_ms": round(percentile(times, 95) * 1e3, 2),
    }


def sample_image(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG photo-sized test image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(blocks).resize(size, Image.Resampling.BILINEAR).save(buffer, "JPEG")
    return buffer.getvalue()


def write_checkpoint(arch: str, size: int, path: Path) -> None:
    """A checkpoint in the trainer's format with random weights (pretrained=False)."""
    from worker.training.checkpoint import Checkpoint, write_checkpoint_atomic
    from worker.training.models import create_model

    model = create_model(arch, N_LABELS, pretrained=False)
    values: dict[str, Any] = {
        "kind": "best", "step": 0, "epoch": 0, "train_seconds": 0.0, "arch": arch,
        "input_size": size, "label_keys": [str(i + 1) for i in range(N_LABELS)],
        "label_names": [f"tag {i + 1}" for i in range(N_LABELS)], "config": {},
        "model_state": model.state_dict(), "optimizer_state": {}, "schedule_state": {},
        "scaler_state": None, "metrics": {}, "monitor": "map", "monitor_value": 0.0,
        "best_value": 0.0, "evals_since_best": 0,
    }  # fmt: skip
    for spec in dataclasses.fields(Checkpoint):
        missing = spec.default is dataclasses.MISSING
        if missing and spec.default_factory is dataclasses.MISSING:
            values.setdefault(spec.name, 0)
    write_checkpoint_atomic(Checkpoint(**values), path)


def in_process(arch: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Eager vs ONNX Runtime on identical inputs, plus one image end to end."""
    import numpy as np
    import torch

    from app.inference.preprocess import preprocess
    from app.inference.sessions import OnnxModel
    from worker.training.checkpoint import read_checkpoint
    from worker.training.export import export_onnx, load_scoring_model
    from worker.training.models import get_arch

    size = get_arch(arch).input_size
    checkpoint_path, onnx_path = work / f"{arch}.pt", work / f"{arch}.onnx"
    write_checkpoint(arch, size, checkpoint_path)
    started = time.perf_counter()
    export_onnx(checkpoint_path, onnx_path)
    export_seconds = time.perf_counter() - started
    eager = load_scoring_model(read_checkpoint(checkpoint_path))
    onnx = OnnxModel(str(onnx_path))
    images = [sample_image(i) for i in range(args.batch_size)]
    batch = np.stack([preprocess(image, size) for image in images])
    one = batch[:1]

    def eager_run(inputs: np.ndarray) -> None:
        with torch.inference_mode():
            eager(torch.from_numpy(inputs))

    result: dict[str, Any] = {"input_size": size, "export_seconds": round(export_seconds, 1)}
    # Eager and ONNX Runtime calls alternate, so load from other processes hits both alike.
    runs = {"eager": eager_run, "onnx": onnx.run_direct}
    latency = interleaved(runs, one, args.iters, args.warmup)
    throughput = interleaved(runs, batch, args.batches, 1)
    for name in runs:
        result[name] = {
            "batch1_latency": latency_summary(latency[name]),
            "batch16_images_per_s": round(
                len(batch) * len(throughput[name]) / sum(throughput[name]), 1
            ),
        }
    result["onnx_vs_eager"] = {
        "throughput_ratio": round(
            result["onnx"]["batch16_images_per_s"] / result["eager"]["batch16_images_per_s"], 2
        ),
        "latency_ratio": round(
            result["eager"]["batch1_latency"]["p50_ms"]
            / result["onnx"]["batch1_latency"]["p50_ms"],
            2,
        ),
    }
    MODELS[arch] = (onnx, images[0])
    return result


# The in-process ONNX models stay loaded for the REST comparison.
MODELS: dict[str, Any] = {}


def interleaved(
    runs: dict[str, Any], inputs: Any, iters: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call of each ``run(inputs)``, the runs taking turns."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for step in range(warmup + iters):
        for name, run in runs.items():
            start = time.perf_counter()
            run(inputs)
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def prepare_server_data(onnx_paths: dict[str, Path]) -> tuple[str, dict[str, int]]:
    """A user, an API key, a project and one live deployment per arch; returns (key, ids)."""
    from app.db import session_scope
    from app.deps import get_blob_store
    from app.inference.sessions import OnnxModel
    from app.migrate import upgrade
    from app.models import Deployment
    from app.services import api_keys, deployment_files, projects, users

    upgrade()
    store = get_blob_store()
    ids: dict[str, int] = {}
    with session_scope() as session:
        user = users.create(session=session, email="bench@example.com", password="x" * 12)
        _row, key = api_keys.create(session=session, user=user, name="bench")
        project = projects.create(session=session, name="bench")
        for version, (arch, path) in enumerate(onnx_paths.items(), start=1):
            model = OnnxModel(str(path))
            deployment = Deployment(
                project_id=project.id, name=arch, version=version, status="live", active=True,
                is_default=version == 1,
                labels=[{"key": k, "tag_id": None, "name": f"tag {k}"}
                        for k in model.metadata["label_keys"]],
                thresholds=[0.5] * N_LABELS,
                preprocessing={"input_size": model.input_size, "arch": arch},
            )  # fmt: skip
            model.close()
            session.add(deployment)
            session.flush()
            deployment.onnx_key = deployment_files.prefix(deployment) + "model.onnx"
            store.put(deployment.onnx_key, path.read_bytes())
            ids[arch] = deployment.id
        session.commit()
    return key, ids


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn serving the app on a free loopback port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("uvicorn did not start within 60 s")


def rest(url: str, key: str, arch: str, deployment_id: int, clients: int, requests: int
         ) -> dict[str, Any]:  # fmt: skip
    """Latency percentiles and images/s of single-image predict calls from ``clients`` threads.

    With one client each request alternates with the same work in process (decode, shared
    preprocessing, ONNX Runtime), so the overhead of the HTTP path is measured under equal load.
    """
    import httpx

    model, image = MODELS[arch]
    endpoint = f"{url}/api/v1/deployments/{deployment_id}/predict"
    latencies: list[float] = []
    in_process: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def client(_index: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            for _ in range(2):  # warm the connection and the model
                http.post(endpoint, files={"files": ("a.jpg", image, "image/jpeg")})
            for _ in range(per_client):
                if clients == 1:
                    start = time.perf_counter()
                    model.predict([image])
                    in_process.append(time.perf_counter() - start)
                start = time.perf_counter()
                response = http.post(endpoint, files={"files": ("a.jpg", image, "image/jpeg")})
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started - sum(in_process)
    result: dict[str, Any] = {
        **latency_summary(latencies),
        "requests": len(latencies),
        # Warm-up calls are in the wall time too, so this slightly understates throughput.
        "images_per_s": round((len(latencies) + 2 * clients) / wall, 1),
    }
    if in_process:
        result["in_process_one_image"] = latency_summary(in_process)
        # The median of paired differences: robust to load that shifts both sides at once.
        pairs = [r - i for r, i in zip(latencies, in_process, strict=True)]
        result["overhead_p50_ms"] = round(percentile(pairs, 50) * 1e3, 2)
    return result


def main() -> None:
    """Run every measurement and print one JSON document."""
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="polytag-bench-"))
    env = os.environ.copy()
    env.update({
        "POLYTAG_DATA_DIR": str(work / "data"),
        "POLYTAG_DATABASE_URL": f"sqlite:///{work / 'data' / 'polytag.db'}",
        "POLYTAG_BROKER_URL": f"sqla+sqlite:///{work / 'data' / 'broker.db'}",
        "POLYTAG_STORAGE_BACKEND": "local",
    })  # fmt: skip
    os.environ.update(env)  # before app settings are imported

    import torch

    report: dict[str, Any] = {
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "args": vars(args),
        "models": {},
    }
    for arch in args.archs:
        report["models"][arch] = in_process(arch, work, args)
    key, ids = prepare_server_data({arch: work / f"{arch}.onnx" for arch in args.archs})
    server, url = start_server(env)
    try:
        for arch in args.archs:
            entry = report["models"][arch]
            entry["rest"] = {
                str(clients): rest(url, key, arch, ids[arch], clients, args.rest_requests)
                for clients in args.concurrency
            }
            if "1" in entry["rest"]:
                entry["rest_overhead_p50_ms"] = entry["rest"]["1"]["overhead_p50_ms"]
            entry["aims"] = {
                "onnx_throughput_at_least_1.5x_eager": entry["onnx_vs_eager"]["throughput_ratio"]
                >= 1.5,
                "rest_adds_at_most_5ms_p50": entry.get("rest_overhead_p50_ms", 1e9) <= 5.0,
            }
    finally:
        for model, _image in MODELS.values():
            model.close()
        server.terminate()
        server.wait(timeout=20)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
