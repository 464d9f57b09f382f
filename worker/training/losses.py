"""Multi-label losses: BCE with logits (default) and Asymmetric Loss (Ridnik et al., 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worker.training.config import TrainConfig


class AsymmetricLoss(nn.Module):
    """ASL: focal down-weighting with separate gammas for positives and negatives, plus a
    probability margin ``clip`` that discards easy negatives. Mean over all elements, so with
    ``gamma_neg = gamma_pos = clip = 0`` it equals ``BCEWithLogitsLoss``."""

    def __init__(
        self, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05, eps: float = 1e-8
    ) -> None:
        super().__init__()
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the mean loss of (N, K) logits against (N, K) 0/1 targets."""
        logits = logits.float()
        targets = targets.float()
        prob = torch.sigmoid(logits)
        log_pos = F.logsigmoid(logits)
        if self.clip > 0:
            # Shifted negative probability: p_m = max(p - clip, 0); log(1 - p_m).
            prob_neg = (prob - self.clip).clamp(min=0)
            log_neg = torch.log((1 - prob_neg).clamp(min=self.eps))
        else:
            prob_neg = prob
            log_neg = F.logsigmoid(-logits)  # log(1 - p), stable for large logits
        loss = targets * log_pos + (1 - targets) * log_neg
        if self.gamma_neg > 0 or self.gamma_pos > 0:
            # Probability of the wrong answer, raised to the side's gamma.
            wrong = targets * (1 - prob) + (1 - targets) * prob_neg
            gamma = targets * self.gamma_pos + (1 - targets) * self.gamma_neg
            loss = loss * torch.pow(wrong, gamma)
        return -loss.mean()


def build_loss(config: TrainConfig) -> nn.Module:
    """Return the loss module named by ``config.loss``."""
    if config.loss == "asl":
        return AsymmetricLoss(config.gamma_neg, config.gamma_pos, config.clip)
    return nn.BCEWithLogitsLoss()
