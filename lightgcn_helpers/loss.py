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

__all__ = ["bpr_loss", "l2_regularization", "bpr_batch_loss", "bpr_shared_negatives_loss"]


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


def bpr_batch_loss(emb: Tensor, emb0: Tensor, users: Tensor, pos: Tensor, neg: Tensor,
                   weight_decay: float) -> Tensor:
    """BPR + λ·L2 of one mini-batch, with one gather per embedding table.

    ``emb``: final embeddings ``(N, d)``; ``emb0``: layer-0 embeddings ``(N, d)``;
    ``users``, ``pos``: node indices ``(B,)``; ``neg``: node indices ``(B,)`` or ``(B, n)``
    (movie nodes already offset by ``num_users``). With ``n`` negatives per positive the
    BPR term averages over all ``B·n`` pairs and the L2 term counts the mean negative::

        mean softplus(ŷ_uj - ŷ_ui)  +  λ · ½ (‖e_u⁰‖² + ‖e_i⁰‖² + mean_j ‖e_j⁰‖²) / B

    which equals ``bpr_loss + λ · l2_regularization(e_u⁰, e_i⁰, e_j⁰)`` for ``n = 1``.
    """
    b = users.numel()
    # every positive b has its own row b of negatives: the shared-negatives loss with row[b] = b
    row = torch.arange(b, device=users.device)
    return bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg.reshape(b, -1), weight_decay)


def bpr_shared_negatives_loss(emb: Tensor, emb0: Tensor, users: Tensor, pos: Tensor, row: Tensor,
                              neg: Tensor, weight_decay: float, hardest: int | None = None) -> Tensor:
    """:func:`bpr_batch_loss` when each distinct user's ``n`` negatives are shared by all
    of that user's positives in the batch (see ``BPRSampler.epoch_shared``).

    ``users``, ``pos``: node indices ``(B,)``; ``neg``: movie node indices ``(U_b, n)``,
    one row per distinct user; ``row`` ``(B,)``: the row of ``neg`` for each positive.
    Same objective as :func:`bpr_batch_loss` with ``neg[row]`` as negatives, but only
    ``U_b·n`` negative embeddings are gathered and scored instead of ``B·n``.

    ``hardest=m`` (``1 ≤ m ≤ n``): the ``n`` sampled movies are *candidates*; each positive
    is trained against the ``m`` of them the model currently scores highest — dynamic
    negative sampling (Zhang et al., SIGIR 2013). The BPR term then averages over the
    ``B·m`` hardest pairs (still ``softplus ≥ 0``); easy negatives, which a ranking model
    already puts far below the liked movie, no longer dilute the gradient. The L2 term is
    unchanged (all candidates). ``None`` (or ``m = n``) keeps every negative.
    """
    b = users.numel()
    ub, n = neg.shape
    first = torch.zeros(ub, dtype=torch.long, device=row.device).scatter_(0, row, torch.arange(b, device=row.device))
    u = emb[users]
    pos_scores = torch.einsum("bd,bd->b", u, emb[pos])  # (B,): ŷ_ui, no (B, d) product temporary
    j = emb[neg.reshape(-1)].view(ub, n, -1)  # (U_b, n, d): the only large gather
    neg_scores = torch.bmm(j, u[first].unsqueeze(2)).squeeze(2)  # (U_b, n): each distinct user once
    diff = neg_scores[row] - pos_scores.unsqueeze(1)  # (B, n): ŷ_uj - ŷ_ui
    if hardest is not None and hardest != n:
        if not 1 <= hardest <= n:
            raise ValueError(f"hardest must be between 1 and the number of negatives ({n}), got {hardest}")
        diff = diff.topk(hardest, dim=1, sorted=False).values  # the m highest-scored negatives
    loss = F.softplus(diff).mean()
    # L2 of the layer-0 rows involved, from the squared norm of every node: gathering scalars
    # instead of d-dimensional rows. A negative row of a user with c positives in the batch
    # counts c/n times (the mean negative norm, per positive).
    sq = emb0.pow(2).sum(-1)  # (N,)
    per_row = torch.bincount(row, minlength=ub).to(sq.dtype) / n
    reg = 0.5 * (sq[users].sum() + sq[pos].sum() + (sq[neg] * per_row.unsqueeze(1)).sum()) / b
    return loss + weight_decay * reg
