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

__all__ = ["bpr_loss", "l2_regularization", "bpr_batch_loss", "bpr_shared_negatives_loss", "pair_scores",
           "mixed_negatives_loss"]


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
                   l2_lambda: float) -> Tensor:
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
    return bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg.reshape(b, -1), l2_lambda)


_CHUNK = 2048  # rows of candidates scored at once: keeps temporaries at a few MB


def _chunked_scores(emb: Tensor, a: Tensor, b: Tensor, emb_b: Tensor | None = None) -> Tensor:
    """``emb[a[r]] · emb_b[b[r, k]]`` (``emb_b`` defaults to ``emb``), in chunks of rows."""
    emb_b = emb if emb_b is None else emb_b
    out = torch.empty(b.shape, dtype=emb.dtype, device=emb.device)
    for s in range(0, a.numel(), _CHUNK):  # a loop over chunks of rows, not over pairs
        c = slice(s, s + _CHUNK)
        out[c] = torch.bmm(emb_b[b[c]], emb[a[c]].unsqueeze(2)).squeeze(2)
    return out


class _PairScores(torch.autograd.Function):
    """``out[r, k] = emb[a[r]] · emb[b[r, k]]`` for node indices ``a`` ``(R,)`` and ``b``
    ``(R, n)``, computed in chunks of rows: neither pass materialises the ``(R, n, d)`` tensor of
    gathered rows or of their gradients (hundreds of MB on a graph like Gowalla, which the
    allocator would map and page-fault into memory at every step). The backward pass adds the
    gradients into the ``(N, d)`` table with ``index_add_``."""

    @staticmethod
    def forward(ctx, emb: Tensor, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(emb, a, b)
        return _chunked_scores(emb, a, b)

    @staticmethod
    def backward(ctx, grad: Tensor):
        emb, a, b = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        out = torch.zeros_like(emb)
        for s in range(0, a.numel(), _CHUNK):
            c = slice(s, s + _CHUNK)
            g, ea, eb = grad[c], emb[a[c]], emb[b[c]]
            out.index_add_(0, a[c], torch.bmm(g.unsqueeze(1), eb).squeeze(1))  # Σ_k g_rk e_b
            out.index_add_(0, b[c].reshape(-1), (g.unsqueeze(2) * ea.unsqueeze(1)).reshape(-1, emb.shape[1]))
        return out, None, None


def pair_scores(emb: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Inner products ``emb[a[r]] · emb[b[r, k]]``, shape ``b.shape``: one user row ``a[r]``
    against its ``n`` candidate rows ``b[r]`` (differentiable in ``emb``, memory-lean)."""
    if torch.is_grad_enabled() and emb.requires_grad:
        return _PairScores.apply(emb, a, b)
    return _chunked_scores(emb, a, b)


def bpr_shared_negatives_loss(emb: Tensor, emb0: Tensor, users: Tensor, pos: Tensor, row: Tensor,
                              neg: Tensor, l2_lambda: float, hardest: int | None = None) -> Tensor:
    """:func:`bpr_batch_loss` when each distinct user's ``n`` negatives are shared by all
    of that user's positives in the batch (see ``BPRSampler.epoch_shared``).

    ``users``, ``pos``: node indices ``(B,)``; ``neg``: movie node indices ``(U_b, n)``,
    one row per distinct user; ``row`` ``(B,)``: the row of ``neg`` for each positive.
    Same objective as :func:`bpr_batch_loss` with ``neg[row]`` as negatives, but only
    ``U_b·n`` negative scores are computed instead of ``B·n``.

    ``hardest=m`` (``1 ≤ m ≤ n``): the ``n`` sampled movies are *candidates*; each positive
    is trained against the ``m`` of them the model currently scores highest — dynamic
    negative sampling (Zhang et al., SIGIR 2013). The BPR term then averages over the
    ``B·m`` hardest pairs (still ``softplus ≥ 0``); easy negatives, which a ranking model
    already puts far below the liked movie, no longer dilute the gradient. The L2 term is
    unchanged (all candidates). ``None`` (or ``m = n``) keeps every negative.

    Since ``ŷ_uj − ŷ_ui`` orders the candidates of a user the same way for every liked movie
    ``i``, the hardest ``m`` are chosen once per distinct user, from scores computed without
    gradient; only those ``U_b·m`` scores are recomputed for the backward pass.
    """
    ub, n = neg.shape
    if hardest is not None and not 1 <= hardest <= n:
        raise ValueError(f"hardest must be between 1 and the number of negatives ({n}), got {hardest}")
    owner = _first_rows(users, row, ub)  # (U_b,): the user node of each row of neg
    used = neg
    if hardest is not None and hardest != n:
        with torch.no_grad():  # rank the candidates, then keep the m highest-scored ones
            top = pair_scores(emb.detach(), owner, neg).topk(hardest, dim=1, sorted=False).indices
        used = neg.gather(1, top)
    neg_scores = pair_scores(emb, owner, used)  # (U_b, m): each distinct user once
    pos_scores = torch.einsum("bd,bd->b", emb.index_select(0, users), emb.index_select(0, pos))  # ŷ_ui
    loss = F.softplus(neg_scores[row] - pos_scores.unsqueeze(1)).mean()  # (B, m) margins ŷ_uj - ŷ_ui
    return loss + l2_lambda * _shared_l2(emb0, users, pos, row, neg)


def _shared_l2(emb0: Tensor, users: Tensor, pos: Tensor, row: Tensor, neg: Tensor) -> Tensor:
    """``½ (‖e_u⁰‖² + ‖e_i⁰‖² + mean_j ‖e_j⁰‖²) / B`` over a batch whose negatives are shared per
    user (``neg`` ``(U_b, n)``, ``row`` ``(B,)``), from the squared norm of every node: gathering
    scalars instead of d-dimensional rows. A negative row of a user with c positives in the
    batch counts c/n times (the mean negative norm, per positive)."""
    b = users.numel()
    ub, n = neg.shape
    sq = emb0.pow(2).sum(-1)  # (N,)
    per_row = torch.bincount(row, minlength=ub).to(sq.dtype) / n
    return 0.5 * (sq[users].sum() + sq[pos].sum() + (sq[neg] * per_row.unsqueeze(1)).sum()) / b


def _first_rows(users: Tensor, row: Tensor, ub: int) -> Tensor:
    """The user node of each of the ``ub`` rows of shared negatives."""
    b = users.numel()
    first = torch.zeros(ub, dtype=torch.long, device=row.device).scatter_(0, row, torch.arange(b, device=row.device))
    return users[first]


def mixed_negatives_loss(layers: list[Tensor], alpha: Tensor, users: Tensor, pos: Tensor, row: Tensor,
                         neg: Tensor, l2_lambda: float, synthetic: int = 1,
                         generator: torch.Generator | None = None) -> Tensor:
    """BPR against *synthesised* hard negatives: MixGCF (Huang et al., KDD 2021).

    ``layers``: the layer embeddings ``[E⁰, ..., E^L]`` (each ``(N, d)``, ``E⁰`` the trained table);
    ``alpha``: the layer weights, so the final embedding is ``e = Σ_l α_l e^l``; ``users``, ``pos``,
    ``row``, ``neg`` as in :func:`bpr_shared_negatives_loss` (the ``n`` sampled movies of each
    distinct user are *candidates*). For every liked pair (u, i), ``synthetic`` negatives are built:

    * hop mixing: in every layer l, the candidate j_l the model scores highest,
      ``argmax_j e_u · e_j^l`` (the ``s``-th highest for the ``s``-th synthetic negative);
    * positive mixing: ``ẽ^l = a_l e_i^l + (1 − a_l) e_{j_l}^l`` with ``a_l ~ U(0, 1)``, one
      draw per pair and layer (from ``generator``), so the negative leans towards the liked item;
    * ``ẽ = Σ_l α_l ẽ^l`` and the BPR term ``softplus(e_u · ẽ − e_u · e_i)`` (still ≥ 0).

    The negative then lies between a hard sampled movie and the liked one, layer by layer: a
    harder, more informative negative than any sampled movie. Gradients flow into the liked
    item and the chosen candidates through every layer. The L2 term is that of
    :func:`bpr_shared_negatives_loss` (the layer-0 rows of users, liked items and all candidates).
    """
    b = users.numel()
    ub, n = neg.shape
    if not 1 <= synthetic <= n:
        raise ValueError(f"synthetic must be between 1 and the number of candidates ({n}), got {synthetic}")
    if len(layers) != alpha.numel():
        raise ValueError(f"{len(layers)} layer embeddings but {alpha.numel()} layer weights")
    emb = sum(a * x for a, x in zip(alpha, layers))
    e_u = emb.index_select(0, users)
    pos_scores = torch.einsum("bd,bd->b", e_u, emb.index_select(0, pos))  # ŷ_ui
    neg_scores = torch.zeros(b, synthetic, dtype=emb.dtype, device=emb.device)
    owner = _first_rows(users, row, ub)
    user_rows = emb.detach()
    for a_l, x in zip(alpha, layers):
        with torch.no_grad():  # hop mixing: the hardest candidates of this layer, per distinct user
            top = _chunked_scores(user_rows, owner, neg, x.detach()).topk(synthetic, dim=1).indices
            chosen = neg.gather(1, top)[row]  # (B, s)
            mix = torch.rand(b, 1, generator=generator, device=emb.device, dtype=emb.dtype)
        up = torch.einsum("bd,bd->b", e_u, x.index_select(0, pos)).unsqueeze(1)  # e_u · e_i^l
        un = torch.einsum("bd,bsd->bs", e_u, x[chosen])  # e_u · e_j^l
        neg_scores = neg_scores + a_l * (mix * up + (1 - mix) * un)
    loss = F.softplus(neg_scores - pos_scores.unsqueeze(1)).mean()
    return loss + l2_lambda * _shared_l2(layers[0], users, pos, row, neg)
