"""Full-ranking evaluation: every user against every movie, seen movies masked.

For a user u with held-out relevant movies T_u and the top-K list L_u (after masking
movies u interacted with in training, and in validation when scoring the test set):

* Recall@K    = |L_u ∩ T_u| / |T_u|
* Precision@K = |L_u ∩ T_u| / K
* NDCG@K      = DCG / IDCG, DCG = Σ_{r=1..K} [L_u[r] ∈ T_u] / log2(r + 1),
  IDCG = Σ_{r=1..min(K, |T_u|)} 1 / log2(r + 1)
* HitRate@K   = [|L_u ∩ T_u| > 0]

each averaged over the users that have at least one held-out movie. Everything is
vectorized over users (in chunks, to bound memory) and over the K ranks.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .sampling import contains, edge_keys

__all__ = ["topk_items", "ranking_metrics", "evaluate_scores", "evaluate_embeddings", "embedding_scorer"]


def topk_items(score_fn: Callable[[Tensor], Tensor], users: Tensor, k: int, num_items: int,
               exclude: Sequence[Tensor] = (), chunk_size: int = 1024) -> Tensor:
    """Top-``k`` movie indices ``(len(users), k)`` by ``score_fn(users_chunk) -> (B, num_items)``,
    with the ``(2, E)`` interactions in ``exclude`` masked to ``-inf`` for their users."""
    users = users.long()
    excl = [e.to(users.device) for e in exclude if e.numel()]
    n_rows = max([int(users.max()) + 1 if users.numel() else 0] + [int(e[0].max()) + 1 for e in excl])
    out = []
    for start in range(0, users.numel(), chunk_size):
        batch = users[start:start + chunk_size]
        scores = score_fn(batch).float().clone()
        if scores.shape != (batch.numel(), num_items):
            raise ValueError(f"score_fn returned {tuple(scores.shape)}, expected {(batch.numel(), num_items)}")
        row_of = torch.full((n_rows,), -1, dtype=torch.long, device=users.device)
        row_of[batch] = torch.arange(batch.numel(), device=users.device)  # user -> row in this chunk
        for e in excl:
            rows = row_of[e[0]]
            sel = rows >= 0
            scores[rows[sel], e[1, sel]] = float("-inf")
        out.append(_topk_ties_by_index(scores, k))
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long, device=users.device)


def _topk_ties_by_index(scores: Tensor, k: int) -> Tensor:
    """``torch.topk(scores, k).indices`` with a deterministic tie-break: equal scores are
    ranked by ascending movie index. ``torch.topk`` leaves the order of ties to the
    implementation (it differs between CPU and CUDA and between versions), which makes
    models with many exact ties (popularity: integer counts) give machine-dependent metrics."""
    vals, idx = torch.topk(scores, k, dim=1)
    kth = vals[:, -1:]
    ambiguous = (scores == kth).sum(1) > (vals == kth).sum(1)  # more tied movies than slots left
    if ambiguous.any():
        s = scores[ambiguous]
        t = kth[ambiguous]
        tied = s == t
        need = k - (s > t).sum(1, keepdim=True)
        keep = (s > t) | (tied & (torch.cumsum(tied, 1) <= need))  # the lowest-index tied movies
        idx[ambiguous] = keep.nonzero()[:, 1].view(-1, k)
    idx = idx.sort(1).values  # ascending index, then a stable sort by descending score
    return idx.gather(1, torch.sort(scores.gather(1, idx), dim=1, descending=True, stable=True).indices)


def ranking_metrics(topk: Tensor, users: Tensor, relevant: Tensor, num_items: int,
                    ks: Sequence[int] = (20,)) -> dict[str, float]:
    """Metrics of ranked lists ``topk`` ``(U, K_max)`` for ``users`` ``(U,)`` against the
    relevant interactions ``relevant`` ``(2, E)``. Keys like ``'recall@20'``."""
    keys = edge_keys(relevant, num_items)
    n_rel = torch.bincount(relevant[0], minlength=int(users.max()) + 1)[users].float()
    if (n_rel == 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    hits = contains(keys, users.unsqueeze(1).expand_as(topk), topk, num_items).float()  # (U, K_max)
    discount = 1.0 / torch.log2(torch.arange(2, topk.shape[1] + 2, device=topk.device).float())
    res = {}
    for k in ks:
        if k > topk.shape[1]:
            raise ValueError(f"k={k} exceeds the ranked list length {topk.shape[1]}")
        h = hits[:, :k]
        n_hit = h.sum(1)
        dcg = (h * discount[:k]).sum(1)
        ideal = torch.cumsum(discount[:k], 0)[(n_rel.clamp(max=k) - 1).long()]
        res[f"recall@{k}"] = (n_hit / n_rel).mean().item()
        res[f"precision@{k}"] = (n_hit / k).mean().item()
        res[f"ndcg@{k}"] = (dcg / ideal).mean().item()
        res[f"hit@{k}"] = (n_hit > 0).float().mean().item()
    return res


def evaluate_scores(score_fn: Callable[[Tensor], Tensor], eval_edges: Tensor, num_items: int,
                    exclude: Sequence[Tensor] = (), ks: Sequence[int] = (20,), chunk_size: int = 1024) -> dict[str, float]:
    """Rank all movies for every user that has an ``eval_edges`` interaction, masking
    ``exclude`` (training, plus validation when testing); return :func:`ranking_metrics`."""
    users = torch.unique(eval_edges[0])
    top = topk_items(score_fn, users, max(ks), num_items, exclude, chunk_size)
    out = ranking_metrics(top, users, eval_edges, num_items, ks)
    out["users"] = int(users.numel())
    return out


def embedding_scorer(user_emb: Tensor, item_emb: Tensor) -> Callable[[Tensor], Tensor]:
    """``score_fn`` for inner-product models: ``users → user_emb[users] @ item_emb.T``."""
    return lambda users: user_emb[users] @ item_emb.T


@torch.no_grad()
def evaluate_embeddings(user_emb: Tensor, item_emb: Tensor, eval_edges: Tensor, exclude: Sequence[Tensor] = (),
                        ks: Sequence[int] = (20,)) -> dict[str, float]:
    """:func:`evaluate_scores` for final (propagated) user and movie embeddings."""
    return evaluate_scores(embedding_scorer(user_emb, item_emb), eval_edges.to(user_emb.device),
                           item_emb.shape[0], [e.to(user_emb.device) for e in exclude], ks)
