"""Losses: ASL reduces to BCE without focusing or clipping, and down-weights easy negatives."""

from __future__ import annotations

import torch
from torch import nn

from worker.training.losses import AsymmetricLoss


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=generator) * 4
    logits[0, 0], logits[1, 1] = 40.0, -40.0  # saturated sigmoid on both sides
    targets = (torch.rand(16, 5, generator=generator) < 0.4).float()
    return logits, targets


def test_asl_with_zero_gammas_and_clip_equals_bce() -> None:
    logits, targets = _batch()

    asl = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0)(logits, targets)
    bce = nn.BCEWithLogitsLoss()(logits, targets)

    assert torch.allclose(asl, bce, atol=1e-6)


def test_asl_gradients_match_bce_at_zero_gammas() -> None:
    logits, targets = _batch()
    asl_input = logits.clone().requires_grad_(True)
    bce_input = logits.clone().requires_grad_(True)

    AsymmetricLoss(0, 0, 0)(asl_input, targets).backward()
    nn.BCEWithLogitsLoss()(bce_input, targets).backward()

    assert asl_input.grad is not None and bce_input.grad is not None
    assert torch.allclose(asl_input.grad, bce_input.grad, atol=1e-7)


def test_asl_discounts_easy_negatives_and_keeps_gradients_finite() -> None:
    logits, targets = _batch()
    easy_negatives = torch.full((4, 5), -3.0)  # p ~ 0.05: easy, clipped to zero loss
    zeros = torch.zeros(4, 5)
    asl = AsymmetricLoss(gamma_neg=4, gamma_pos=0, clip=0.05)
    inputs = logits.clone().requires_grad_(True)

    asl(inputs, targets).backward()

    assert float(asl(easy_negatives, zeros)) < 1e-3
    assert float(nn.BCEWithLogitsLoss()(easy_negatives, zeros)) > 0.04
    assert inputs.grad is not None and torch.isfinite(inputs.grad).all()
