"""Bayesian Personalized Ranking (Rendle et al., 2009) as LightGCN trains with it.

For a user u, a liked item i and a sampled not-liked item j:

    L_BPR = mean over (u, i, j) of  -ln σ(ŷ_ui - ŷ_uj)  =  softplus(ŷ_uj - ŷ_ui)

which is ≥ 0 and → 0 as the liked item is ranked above the other. Regularisation is on the
*layer-0* embeddings of the triple only:

    λ · ½ (‖e_u⁰‖² + ‖e_i⁰‖² + ‖e_j⁰‖²) / B

Training scores many candidate negatives per user at once; the chunked scorer and the L2 term
from squared norms that make that cheap are in :mod:`lightgcn_helpers._fast`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._fast import chunked_scores, pair_scores, shared_l2
from .model import combine_layers

__all__ = ["bpr_loss", "l2_regularization", "bpr_batch_loss", "bpr_shared_negatives_loss",
           "mixed_negatives_loss"]


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Mean of ``-ln σ(pos - neg) = softplus(neg - pos)``; both inputs ``(B,)``. Lower bound 0.
    Derived in notebook 05, §1."""
    if pos_scores.shape != neg_scores.shape:
        raise ValueError(f"pos and neg scores must have the same shape, got "
                         f"{tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}")
    return F.softplus(neg_scores - pos_scores).mean()


def l2_regularization(*layer0_embeddings: Tensor) -> Tensor:
    """``½ Σ ‖e⁰‖² / B`` over the given ``(B, d)`` layer-0 embedding batches.
    Derived in notebook 05, §1."""
    batch = layer0_embeddings[0].shape[0]
    return 0.5 * sum(e.pow(2).sum() for e in layer0_embeddings) / batch


def bpr_batch_loss(emb: Tensor, emb0: Tensor, users: Tensor, pos: Tensor, neg: Tensor,
                   l2_lambda: float) -> Tensor:
    """BPR + λ·L2 of one mini-batch, with one gather per embedding table. Derived in notebook
    05, §1.

    ``emb``: final embeddings ``(N, d)``; ``emb0``: layer-0 embeddings ``(N, d)``;
    ``users``, ``pos``: node indices ``(B,)``; ``neg``: node indices ``(B,)`` or ``(B, n)``
    (items already offset by ``num_users``). With ``n`` negatives per positive the BPR term
    averages over all ``B·n`` pairs and the L2 term counts the mean negative::

        mean softplus(ŷ_uj - ŷ_ui)  +  λ · ½ (‖e_u⁰‖² + ‖e_i⁰‖² + mean_j ‖e_j⁰‖²) / B

    which equals ``bpr_loss + λ · l2_regularization(e_u⁰, e_i⁰, e_j⁰)`` for ``n = 1``.
    """
    batch = users.numel()
    # every positive has its own row of negatives: the shared-negatives loss with row[b] = b
    row = torch.arange(batch, device=users.device)
    return bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg.reshape(batch, -1), l2_lambda)


def _row_owners(users: Tensor, row: Tensor, rows: int) -> Tensor:
    """The user node of each of the ``rows`` rows of shared negatives (``neg[row[b]]`` are the
    negatives of ``users[b]``)."""
    positions = torch.arange(users.numel(), device=row.device)
    first = torch.zeros(rows, dtype=torch.long, device=row.device).scatter_(0, row, positions)
    return users[first]


def bpr_shared_negatives_loss(emb: Tensor, emb0: Tensor, users: Tensor, pos: Tensor,
                              row: Tensor, neg: Tensor, l2_lambda: float,
                              hardest: int | None = None) -> Tensor:
    """:func:`bpr_batch_loss` when each distinct user's ``n`` negatives are shared by all of that
    user's positives in the batch (``BPRSampler.epoch_shared``). Derived in notebook 05, §4.

    ``neg``: item node indices ``(U_b, n)``, one row per distinct user; ``row`` ``(B,)``: the
    row of ``neg`` for each positive. The same objective as :func:`bpr_batch_loss` with
    ``neg[row]`` as negatives, but only ``U_b·n`` negative scores are computed instead of ``B·n``.

    ``hardest=m`` (``1 ≤ m ≤ n``): the ``n`` sampled items are *candidates*; each positive
    trains against the ``m`` the model currently scores highest — dynamic negative sampling
    (Zhang et al., SIGIR 2013); the BPR term averages over those ``B·m`` pairs (the L2 term
    still counts all candidates). ``ŷ_uj − ŷ_ui`` orders a user's candidates the same way for
    every liked item ``i``, so the hardest are chosen once per distinct user, without gradient.
    """
    rows, n = neg.shape
    if hardest is not None and not 1 <= hardest <= n:
        raise ValueError(f"hardest must be between 1 and the number of negatives ({n}), "
                         f"got {hardest}")
    owner = _row_owners(users, row, rows)  # (U_b,): the user node of each row of neg
    used = neg
    if hardest is not None and hardest != n:
        with torch.no_grad():  # rank the candidates, then keep the m highest-scored ones
            scores = pair_scores(emb.detach(), owner, neg)
            top = scores.topk(hardest, dim=1, sorted=False).indices
        used = neg.gather(1, top)
    neg_scores = pair_scores(emb, owner, used)  # (U_b, m): each distinct user once
    pos_scores = torch.einsum("bd,bd->b", emb.index_select(0, users), emb.index_select(0, pos))
    loss = F.softplus(neg_scores[row] - pos_scores.unsqueeze(1)).mean()  # margins ŷ_uj - ŷ_ui
    return loss + l2_lambda * shared_l2(emb0, users, pos, row, neg)


def mixed_negatives_loss(layers: list[Tensor], alpha: Tensor, users: Tensor, pos: Tensor,
                         row: Tensor, neg: Tensor, l2_lambda: float, synthetic: int = 1,
                         generator: torch.Generator | None = None) -> Tensor:
    """BPR against *synthesised* hard negatives: MixGCF (Huang et al., KDD 2021). Derived in
    notebook 08, §2 (the recipe that reaches the paper's numbers).

    ``layers``: ``[E⁰, ..., E^L]`` (``E⁰`` the trained table); ``alpha``: the layer weights;
    ``users``, ``pos``, ``row``, ``neg`` as in :func:`bpr_shared_negatives_loss` (the ``n``
    sampled items of each distinct user are *candidates*). For every liked pair (u, i),
    ``synthetic`` negatives are built: in every layer l the candidate ``j_l`` the model scores
    highest, ``argmax_j e_u · e_j^l`` (the ``s``-th highest for the ``s``-th negative: hop
    mixing), mixed with the liked item, ``ẽ^l = a_l e_i^l + (1 − a_l) e_{j_l}^l``, ``a_l ~
    U(0, 1)`` drawn per pair and layer from ``generator`` (positive mixing); then ``ẽ = Σ_l α_l
    ẽ^l`` and the BPR term ``softplus(e_u · ẽ − e_u · e_i)`` (still ≥ 0). Gradients flow into
    the liked item and the chosen candidates through every layer; the L2 term is that of
    :func:`bpr_shared_negatives_loss`.
    """
    rows, n = neg.shape
    if not 1 <= synthetic <= n:
        raise ValueError(f"synthetic must be between 1 and the number of candidates ({n}), "
                         f"got {synthetic}")
    if len(layers) != alpha.numel():
        raise ValueError(f"{len(layers)} layer embeddings but {alpha.numel()} layer weights")
    emb = combine_layers(layers, alpha)
    e_u = emb.index_select(0, users)
    pos_scores = torch.einsum("bd,bd->b", e_u, emb.index_select(0, pos))  # ŷ_ui
    mixed = _mixed_layer_scores(layers, emb.detach(), e_u, users, pos, row, neg, synthetic,
                                generator)
    neg_scores = combine_layers(mixed, alpha)  # e_u · ẽ = Σ_l α_l e_u · ẽ^l
    loss = F.softplus(neg_scores - pos_scores.unsqueeze(1)).mean()
    return loss + l2_lambda * shared_l2(layers[0], users, pos, row, neg)


def _mixed_layer_scores(layers: list[Tensor], user_rows: Tensor, e_u: Tensor, users: Tensor,
                        pos: Tensor, row: Tensor, neg: Tensor, synthetic: int,
                        generator: torch.Generator | None) -> list[Tensor]:
    """``e_u · ẽ^l`` ``(B, synthetic)`` for every layer l of :func:`mixed_negatives_loss`: the
    hardest candidates of the layer by ``user_rows`` (the final embeddings, detached), mixed
    with the liked item by one uniform draw per pair and layer."""
    owner = _row_owners(users, row, neg.shape[0])
    mixed = []
    for layer in layers:
        with torch.no_grad():  # hop mixing: the hardest candidates of this layer, per user
            cand = chunked_scores(user_rows, owner, neg, layer.detach())
            top = cand.topk(synthetic, dim=1).indices
            chosen = neg.gather(1, top)[row]  # (B, s)
            mix = torch.rand(users.numel(), 1, generator=generator, device=e_u.device,
                             dtype=e_u.dtype)
        liked = torch.einsum("bd,bd->b", e_u, layer.index_select(0, pos)).unsqueeze(1)
        hard = torch.einsum("bd,bsd->bs", e_u, layer[chosen])  # e_u · e_j^l
        mixed.append(mix * liked + (1 - mix) * hard)
    return mixed
