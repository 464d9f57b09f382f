"""The registry of supported backbones and model creation with offline-only pretrained weights.

Pretrained weights come from, in order: ``weights_file`` (a local state dict or a Polytag
checkpoint), else timm's own weights when they already sit in the local Hugging Face hub cache or
the torch hub cache. Nothing is ever downloaded; with no weights available the run logs that it
trains from scratch and carries on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

Log = Callable[[str], None]
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchSpec:
    """A supported backbone: its Polytag name, timm model name and default input size."""

    name: str
    timm_name: str
    input_size: int


# Defaults follow each model's timm train/test resolution, rounded up for multi-label detail
# (small objects matter more than in ImageNet classification): HGNetV2-B0 at 320 as specified.
ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("hgnetv2_b0", "hgnetv2_b0", 320),
        ArchSpec("hgnetv2_b1", "hgnetv2_b1", 320),
        ArchSpec("hgnetv2_b2", "hgnetv2_b2", 320),
        ArchSpec("hgnetv2_b3", "hgnetv2_b3", 320),
        ArchSpec("hgnetv2_b4", "hgnetv2_b4", 384),
        ArchSpec("hgnetv2_b5", "hgnetv2_b5", 384),
        ArchSpec("hgnetv2_b6", "hgnetv2_b6", 384),
        ArchSpec("resnet18", "resnet18", 224),
        ArchSpec("resnet50", "resnet50", 224),
        ArchSpec("mobilenetv3_large_100", "mobilenetv3_large_100", 224),
        ArchSpec("efficientnet_b0", "efficientnet_b0", 224),
        # timm's "efficientnetv2_s" has no weights; the TF port is the paper's EfficientNetV2-S.
        ArchSpec("efficientnetv2_s", "tf_efficientnetv2_s", 300),
    )
}


def get_arch(name: str) -> ArchSpec:
    """Return the registry entry for ``name`` or raise ValueError listing the supported ones."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(
            f"unsupported architecture {name!r}; supported: {', '.join(ARCHS)}"
        ) from None


def create_model(
    arch: str,
    num_classes: int,
    *,
    pretrained: bool,
    weights_file: str | os.PathLike[str] | None = None,
    log: Log | None = None,
) -> nn.Module:
    """Create ``arch`` with a fresh ``num_classes`` head, from pretrained weights when available."""
    log = log or _logger.info
    spec = get_arch(arch)
    if weights_file is not None:
        model = timm.create_model(spec.timm_name, pretrained=False, num_classes=num_classes)
        load_backbone_weights(model, Path(weights_file), log)
        return model
    if pretrained:
        cached = find_cached_weights(spec.timm_name)
        if cached is not None:
            try:
                model = timm.create_model(
                    spec.timm_name,
                    pretrained=True,
                    num_classes=num_classes,
                    pretrained_cfg_overlay={"file": str(cached)},
                )
                log(f"loaded pretrained weights for {arch} from {cached}")
                return model
            except Exception as exc:  # a corrupt cache must not kill the run
                log(f"cached weights for {arch} at {cached} unusable ({exc})")
        log(f"no pretrained weights found for {arch}: training from scratch")
    return timm.create_model(spec.timm_name, pretrained=False, num_classes=num_classes)


def find_cached_weights(timm_name: str) -> Path | None:
    """Return the local file of timm's default weights for ``timm_name``, or None; no network."""
    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        repo_dir = _hf_hub_cache() / ("models--" + cfg.hf_hub_id.replace("/", "--"))
        filenames = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
        filenames += ["model.safetensors", "pytorch_model.bin"]
        for snapshot in sorted(repo_dir.glob("snapshots/*")):
            for filename in filenames:
                if (snapshot / filename).is_file():
                    return snapshot / filename
    if isinstance(cfg.url, str) and cfg.url:
        legacy = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if legacy.is_file():
            return legacy
    return None


def _hf_hub_cache() -> Path:
    # Read at call time (huggingface_hub freezes these at import) so tests and workers can
    # point the cache elsewhere through the environment.
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")) / "hub"


def load_backbone_weights(model: nn.Module, path: Path, log: Log) -> None:
    """Load a state dict non-strictly, skipping tensors whose shape differs (the old head)."""
    state = _read_state_dict(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(usable))
    missing = sorted(set(own) - set(usable))
    if not usable:
        raise ValueError(f"weights file {path} has no tensors matching this architecture")
    model.load_state_dict(usable, strict=False)
    log(
        f"loaded {len(usable)} tensors from {path}; skipped {len(skipped)}"
        f" (e.g. {', '.join(skipped[:3]) or '-'}); left initialised {len(missing)}"
        f" (e.g. {', '.join(missing[:3]) or '-'})"
    )


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    data: Any = torch.load(path, map_location="cpu", weights_only=True)
    # Accept a bare state dict, a Polytag checkpoint ("model") or common wrappers.
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict):
        raise ValueError(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in data.items() if isinstance(v, torch.Tensor)}
