"""Baselines evaluated with the same protocol as LightGCN.

* **Popularity**: every user gets the movies liked most often in training.
* **MF-BPR**: ``LightGCN(num_layers=0)`` trained with the same loop — plain matrix
  factorization, the model LightGCN adds propagation to.
* **EASE** (Steck, WWW 2019): a linear item-item model with the closed form
  ``B = I - P · diag(1/diag(P))``, ``P = (XᵀX + λI)⁻¹`` and scores ``S = X B``.

EASE here never forms the ``items × items`` matrix. With ``M = (λ I_U + X Xᵀ)⁻¹``
(users × users) the Woodbury identity gives ``P = (I - Xᵀ M X) / λ``, hence

    X P = M X          diag(P)_j = (1 - Σ_u X_uj (M X)_uj) / λ        S = X - (M X) / diag(P)

which costs one ``U × U`` inverse (610² on MovieLens) instead of ``I × I`` (9,724²).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .graph import interaction_matrix

__all__ = ["popularity_scorer", "ease_scores", "ease_scorer"]


def popularity_scorer(train_edges: Tensor, num_items: int) -> Callable[[Tensor], Tensor]:
    """``score_fn(users) -> (B, num_items)``: each movie's number of training likes."""
    counts = torch.bincount(train_edges[1], minlength=num_items).float()
    return lambda users: counts.to(users.device).expand(users.numel(), -1)


def ease_scores(train_edges: Tensor, num_users: int, num_items: int, lam: float = 200.0) -> Tensor:
    """EASE scores for all users, ``(num_users, num_items)`` ``float32`` (via Woodbury,
    in float64 for accuracy). ``lam`` is the L2 weight λ of the item-item model."""
    x = interaction_matrix(train_edges, num_users, num_items).to_dense().double()  # (U, I), 610 × 9,724 here
    m = torch.linalg.inv(lam * torch.eye(num_users, dtype=x.dtype, device=x.device) + x @ x.T)
    mx = m @ x
    diag_p = (1.0 - (x * mx).sum(0)) / lam
    return (x - mx / diag_p).float()


def ease_scorer(train_edges: Tensor, num_users: int, num_items: int, lam: float = 200.0) -> Callable[[Tensor], Tensor]:
    """``score_fn(users) -> (B, num_items)`` from :func:`ease_scores` (computed once)."""
    scores = ease_scores(train_edges, num_users, num_items, lam)
    return lambda users: scores[users.to(scores.device)]
