"""Full-ranking evaluation: every user against every item, seen items masked.

For a user u with held-out relevant items T_u (a duplicated (user, item) pair counts
once) and the ranked list L_u of list length k (after masking items u interacted with in
training, and in validation when scoring the test set):

* Recall@k    = |L_u ∩ T_u| / |T_u|
* Precision@k = |L_u ∩ T_u| / k
* NDCG@k      = DCG / IDCG, DCG = Σ_{r=1..k} [L_u[r] ∈ T_u] / log2(r + 1),
  IDCG = Σ_{r=1..min(k, |T_u|)} 1 / log2(r + 1)
* HitRate@k   = [|L_u ∩ T_u| > 0]

each averaged over the users that have at least one held-out item. Everything is
vectorized over users (in chunks, to bound memory) and over the k ranks.

These are the definitions of PyG's ``torch_geometric.metrics`` ``LinkPredRecall``,
``LinkPredPrecision``, ``LinkPredNDCG`` and ``LinkPredHitRatio`` (torch_geometric 2.8.1;
``tests/test_metrics.py`` checks that both give the same numbers, for more relevant items
than k too), with one difference: PyG counts |T_u| as the number of *columns* of its
``edge_label_index`` for the user, so a duplicated (user, item) pair counts twice in the
Recall denominator and in NDCG's min(k, |T_u|), while it can be hit only once. Here each
pair counts once. (PyG also averages over its own row ids, not user ids: pass it
``users`` renumbered 0..U-1.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ._fast import ExcludedIndex, auto_chunk_size, topk_ties_by_index
from .sampling import contains, edge_keys

__all__ = ["topk_items", "user_metrics", "ranking_metrics", "evaluate_scores",
           "evaluate_embeddings", "embedding_scorer"]


def topk_items(score_fn: Callable[[Tensor], Tensor], users: Tensor, k: int, num_items: int,
               exclude: Sequence[Tensor] = (), chunk_size: int | None = None) -> Tensor:
    """Top-``k`` item indices ``(len(users), k)`` by ``score_fn(users_chunk) -> (B, num_items)``,
    with the ``(2, E)`` interactions in ``exclude`` masked to ``-inf`` for their users; equal
    scores ranked by ascending item index. Derived in notebook 06, §2.

    ``chunk_size`` users are scored at once (default: a chunk's scores near 8 MB,
    :func:`~lightgcn_helpers._fast.auto_chunk_size`); the excluded items of every user are
    found once (:class:`~lightgcn_helpers._fast.ExcludedIndex`), so each chunk masks a
    contiguous slice. The scores are masked in place: ``score_fn`` must return a tensor it does
    not keep (a view, e.g. an ``expand``, is copied first)."""
    users = users.long()
    chunk_size = chunk_size or auto_chunk_size(num_items)
    index = ExcludedIndex(exclude, num_items, users)
    out = []
    for start in range(0, users.numel(), chunk_size):
        batch = users[start:start + chunk_size]
        scores = score_fn(batch)
        if scores.dtype != torch.float32:
            scores = scores.float()  # a new tensor
        elif scores._base is not None or not scores.is_contiguous():
            scores = scores.clone()  # a view of something else: never write into it
        if scores.shape != (batch.numel(), num_items):
            raise ValueError(f"score_fn returned {tuple(scores.shape)}, expected "
                             f"{(batch.numel(), num_items)}")
        rows, items = index.entries(start, start + batch.numel())
        scores[rows, items] = float("-inf")
        out.append(topk_ties_by_index(scores, k))
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long, device=users.device)


def user_metrics(topk: Tensor, users: Tensor, relevant: Tensor, num_items: int,
                 ks: Sequence[int] = (20,)) -> dict[str, Tensor]:
    """Per-user metrics of ranked lists ``topk`` ``(U, k_max)`` for ``users`` ``(U,)`` against
    the relevant interactions ``relevant`` ``(2, E)`` (a duplicated pair counts once): a ``(U,)``
    tensor per key like ``'recall@20'`` (for paired comparisons of two models on the same
    users). :func:`ranking_metrics` is their mean. Derived in notebook 06, §1 (paired: §5)."""
    # sorted and unique: a duplicated (user, item) pair counts once
    keys = edge_keys(relevant, num_items)
    n_rel = torch.bincount(keys // num_items, minlength=int(users.max()) + 1)[users].float()
    if (n_rel == 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    hits = contains(keys, users.unsqueeze(1).expand_as(topk), topk, num_items).float()  # (U, k)
    discount = 1.0 / torch.log2(torch.arange(2, topk.shape[1] + 2, device=topk.device).float())
    res = {}
    for k in ks:
        if k > topk.shape[1]:
            raise ValueError(f"k={k} exceeds the ranked list length {topk.shape[1]}")
        h = hits[:, :k]
        n_hit = h.sum(1)
        dcg = (h * discount[:k]).sum(1)
        ideal = torch.cumsum(discount[:k], 0)[(n_rel.clamp(max=k) - 1).long()]
        res[f"recall@{k}"] = n_hit / n_rel
        res[f"precision@{k}"] = n_hit / k
        res[f"ndcg@{k}"] = dcg / ideal
        res[f"hit@{k}"] = (n_hit > 0).float()
    return res


def ranking_metrics(topk: Tensor, users: Tensor, relevant: Tensor, num_items: int,
                    ks: Sequence[int] = (20,)) -> dict[str, float]:
    """Metrics of ranked lists ``topk`` ``(U, k_max)`` for ``users`` ``(U,)`` against the
    relevant interactions ``relevant`` ``(2, E)``, averaged over the users (see
    :func:`user_metrics`). Keys like ``'recall@20'``. Derived in notebook 06, §1."""
    per_user = user_metrics(topk, users, relevant, num_items, ks)
    return {key: v.mean().item() for key, v in per_user.items()}


def evaluate_scores(score_fn: Callable[[Tensor], Tensor], eval_edges: Tensor, num_items: int,
                    exclude: Sequence[Tensor] = (), ks: Sequence[int] = (20,),
                    chunk_size: int | None = None) -> dict[str, float]:
    """Rank all items for every user that has an ``eval_edges`` interaction, masking
    ``exclude`` (training, plus validation when testing); return :func:`ranking_metrics`.
    Derived in notebook 06, §3."""
    users = torch.unique(eval_edges[0])
    top = topk_items(score_fn, users, max(ks), num_items, exclude, chunk_size)
    out = ranking_metrics(top, users, eval_edges, num_items, ks)
    out["users"] = int(users.numel())
    return out


def embedding_scorer(user_emb: Tensor, item_emb: Tensor) -> Callable[[Tensor], Tensor]:
    """``score_fn`` for inner-product models: ``users → user_emb[users] @ item_emb.T``.
    Derived in notebook 06, §3."""
    return lambda users: user_emb[users] @ item_emb.T


@torch.no_grad()
def evaluate_embeddings(user_emb: Tensor, item_emb: Tensor, eval_edges: Tensor,
                        exclude: Sequence[Tensor] = (),
                        ks: Sequence[int] = (20,)) -> dict[str, float]:
    """:func:`evaluate_scores` for final (propagated) user and item embeddings. Derived in
    notebook 06, §3."""
    return evaluate_scores(embedding_scorer(user_emb, item_emb), eval_edges.to(user_emb.device),
                           item_emb.shape[0], [e.to(user_emb.device) for e in exclude], ks)
