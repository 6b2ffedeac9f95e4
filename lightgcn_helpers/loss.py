"""Bayesian Personalized Ranking (Rendle et al., 2009) as used by LightGCN.

For a user u, a liked item i and a sampled not-liked item j:

    L_BPR = mean over (u, i, j) of  -ln σ(ŷ_ui - ŷ_uj)  =  softplus(ŷ_uj - ŷ_ui)

which is ≥ 0 and → 0 as the liked item is ranked above the other. Regularisation
is on the *layer-0* embeddings of the triple only:

    λ · ½ (‖e_u⁰‖² + ‖e_i⁰‖² + ‖e_j⁰‖²) / B
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bpr_loss", "l2_regularization"]


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Mean of ``-ln σ(pos - neg) = softplus(neg - pos)``; both inputs ``(B,)``. Lower bound 0."""
    if pos_scores.shape != neg_scores.shape:
        raise ValueError(f"pos and neg scores must have the same shape, got {tuple(pos_scores.shape)} "
                         f"and {tuple(neg_scores.shape)}")
    return F.softplus(neg_scores - pos_scores).mean()


def l2_regularization(*layer0_embeddings: Tensor) -> Tensor:
    """``½ Σ ‖e⁰‖² / B`` over the given ``(B, d)`` layer-0 embedding batches."""
    batch = layer0_embeddings[0].shape[0]
    return 0.5 * sum(e.pow(2).sum() for e in layer0_embeddings) / batch
