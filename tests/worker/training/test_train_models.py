"""The arch registry and offline pretrained-weight loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from worker.training.models import ARCHS, create_model, find_cached_weights, get_arch

ARCH = "hgnetv2_b0"
REQUIRED = [f"hgnetv2_b{i}" for i in range(7)] + [
    "resnet18",
    "resnet50",
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "efficientnetv2_s",
]


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Hugging Face and torch hub caches at an empty directory."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "hub"


def test_registry_covers_the_supported_archs_with_default_sizes() -> None:
    assert set(REQUIRED) <= set(ARCHS)
    assert get_arch("hgnetv2_b0").input_size == 320
    assert all(spec.input_size >= 224 for spec in ARCHS.values())
    for spec in ARCHS.values():  # every entry names a model timm can build
        assert timm.is_model(spec.timm_name), spec.timm_name
    with pytest.raises(ValueError, match=r"unsupported architecture 'vit_huge'.*resnet18"):
        get_arch("vit_huge")


def test_no_weights_available_trains_from_scratch_without_network(empty_caches: Path) -> None:
    messages: list[str] = []

    model = create_model(ARCH, 3, pretrained=True, log=messages.append)

    assert messages == [f"no pretrained weights found for {ARCH}: training from scratch"]
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_weights_in_the_hub_cache_are_loaded_with_a_new_head(empty_caches: Path) -> None:
    cfg = timm.models.get_pretrained_cfg(ARCH)
    assert cfg is not None and cfg.hf_hub_id
    snapshot = empty_caches / f"models--{cfg.hf_hub_id.replace('/', '--')}" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    imagenet = timm.create_model(ARCH, num_classes=1000)
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()},
              str(snapshot / "model.safetensors"))  # fmt: skip
    messages: list[str] = []

    assert find_cached_weights(ARCH) == snapshot / "model.safetensors"
    model = create_model(ARCH, 3, pretrained=True, log=messages.append)

    stem = "stem.stem1.conv.weight"
    assert torch.equal(model.state_dict()[stem], imagenet.state_dict()[stem])
    assert model.state_dict()["head.fc.weight"].shape[0] == 3
    assert messages[0].startswith(f"loaded pretrained weights for {ARCH}")


def test_weights_file_loads_the_backbone_and_drops_the_old_head(tmp_path: Path) -> None:
    source = timm.create_model(ARCH, num_classes=10)
    path = tmp_path / "weights.pt"
    torch.save({"model": source.state_dict()}, path)  # a Polytag checkpoint keeps it here
    messages: list[str] = []

    model = create_model(ARCH, 3, pretrained=False, weights_file=path, log=messages.append)

    stem = "stem.stem1.conv.weight"
    assert torch.equal(model.state_dict()[stem], source.state_dict()[stem])
    assert "skipped 2" in messages[0]  # head.fc weight and bias
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        create_model(ARCH, 3, pretrained=False, weights_file=tmp_path / "missing.pt")
