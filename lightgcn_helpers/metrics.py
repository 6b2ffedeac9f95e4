"""Full-ranking evaluation: every user against every movie, seen movies masked.

For a user u with held-out relevant movies T_u (a duplicated (user, movie) pair counts
once) and the ranked list L_u of list length k (after masking movies u interacted with in
training, and in validation when scoring the test set):

* Recall@k    = |L_u ∩ T_u| / |T_u|
* Precision@k = |L_u ∩ T_u| / k
* NDCG@k      = DCG / IDCG, DCG = Σ_{r=1..k} [L_u[r] ∈ T_u] / log2(r + 1),
  IDCG = Σ_{r=1..min(k, |T_u|)} 1 / log2(r + 1)
* HitRate@k   = [|L_u ∩ T_u| > 0]

each averaged over the users that have at least one held-out movie. Everything is
vectorized over users (in chunks, to bound memory) and over the k ranks.

These are the definitions of PyG's ``torch_geometric.metrics`` ``LinkPredRecall``,
``LinkPredPrecision``, ``LinkPredNDCG`` and ``LinkPredHitRatio`` (torch_geometric 2.8.1;
``tests/test_metrics.py`` checks that both give the same numbers, for more relevant movies
than k too), with one difference: PyG counts |T_u| as the number of *columns* of its
``edge_label_index`` for the user, so a duplicated (user, movie) pair counts twice in the
Recall denominator and in NDCG's min(k, |T_u|), while it can be hit only once. Here each
pair counts once. (PyG also averages over its own row ids, not user ids: pass it
``users`` renumbered 0..U-1.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .sampling import contains, edge_keys

__all__ = ["auto_chunk_size", "topk_items", "ranking_metrics", "evaluate_scores", "evaluate_embeddings", "embedding_scorer"]


def topk_items(score_fn: Callable[[Tensor], Tensor], users: Tensor, k: int, num_items: int,
               exclude: Sequence[Tensor] = (), chunk_size: int | None = None) -> Tensor:
    """Top-``k`` movie indices ``(len(users), k)`` by ``score_fn(users_chunk) -> (B, num_items)``,
    with the ``(2, E)`` interactions in ``exclude`` masked to ``-inf`` for their users.

    The excluded interactions are indexed by user once (:class:`_ExcludedIndex`, CSR-like) and
    every user's excluded movies are gathered in one vectorized pass, so each chunk takes a
    contiguous slice: the masking costs O(E) in all instead of a scan of all E excluded
    interactions per chunk (O(chunks × E)).

    ``chunk_size`` users are scored at once; the default keeps a chunk's scores near 8 MB
    (:func:`auto_chunk_size`): larger blocks are fresh memory maps that the kernel must fault
    in and zero on every chunk, which costs more than the extra calls.

    The scores are masked in place: ``score_fn`` must return a tensor it does not keep
    (a view, e.g. an ``expand``, is copied first)."""
    users = users.long()
    chunk_size = chunk_size or auto_chunk_size(num_items)
    index = _ExcludedIndex(exclude, num_items, users)
    out = []
    for start in range(0, users.numel(), chunk_size):
        batch = users[start:start + chunk_size]
        scores = score_fn(batch)
        if scores.dtype != torch.float32:
            scores = scores.float()  # a new tensor
        elif scores._base is not None or not scores.is_contiguous():
            scores = scores.clone()  # a view of something else: never write into it
        if scores.shape != (batch.numel(), num_items):
            raise ValueError(f"score_fn returned {tuple(scores.shape)}, expected {(batch.numel(), num_items)}")
        rows, items = index.entries(start, start + batch.numel())
        scores[rows, items] = float("-inf")
        out.append(_topk_ties_by_index(scores, k))
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long, device=users.device)


def auto_chunk_size(num_items: int, target_bytes: int = 8 << 20) -> int:
    """Users per chunk so that a chunk's ``float32`` scores take about ``target_bytes``
    (between 16 and 1,024 users): 215 on MovieLens (9,724 movies), 51 on Gowalla (40,981 items)."""
    return int(max(16, min(1024, target_bytes // (4 * max(num_items, 1)))))


class _ExcludedIndex:
    """Every excluded movie of every evaluated user, found once, vectorized: the excluded
    interactions ``(2, E)`` (several tensors, concatenated) are sorted by user with a CSR-like
    pointer (user ``u``'s movies are ``items[ptr[u]:ptr[u + 1]]``), and the slices of
    ``users`` — in their order — are gathered in one pass (``repeat_interleave`` of the
    per-user counts). The entries of ``users[start:stop]`` are then one contiguous slice:
    a chunk costs no search at all. On ``users``' device; memory O(E)."""

    def __init__(self, exclude: Sequence[Tensor], num_items: int, users: Tensor):
        device = users.device
        excl = [e.to(device).long() for e in exclude if e.numel()]
        edges = torch.cat(excl, 1) if excl else torch.empty(2, 0, dtype=torch.long, device=device)
        if edges.numel() and (int(edges.min()) < 0 or int(edges[1].max()) >= num_items):
            raise ValueError(f"excluded interactions must have users >= 0 and movies in 0..{num_items - 1}, got "
                             f"users {int(edges[0].min())}..{int(edges[0].max())}, movies "
                             f"{int(edges[1].min())}..{int(edges[1].max())}")
        n_rows = max(int(users.max()) + 1 if users.numel() else 0, int(edges[0].max()) + 1 if edges.numel() else 0)
        items = edges[1, torch.argsort(edges[0], stable=True)]  # grouped by user
        counts = torch.bincount(edges[0], minlength=n_rows)
        ptr = torch.cumsum(counts, 0) - counts  # start of each user's group
        cnt = counts[users]  # per evaluated user, in the order of ``users``
        ends = torch.cumsum(cnt, 0)
        total = int(ends[-1]) if ends.numel() else 0
        self.rows = torch.repeat_interleave(torch.arange(users.numel(), device=device), cnt, output_size=total)
        within = torch.arange(total, device=device) - (ends - cnt)[self.rows]  # 0, 1, ..., cnt - 1 per user
        self.items = items[ptr[users][self.rows] + within]
        self.offsets = torch.cat([ends.new_zeros(1), ends]).tolist()  # users[i]'s entries: offsets[i]:offsets[i+1]

    def entries(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """``(rows, items)``: every excluded movie of ``users[start:stop]``, ``rows`` counted from ``start``."""
        a, b = self.offsets[start], self.offsets[min(stop, len(self.offsets) - 1)]
        return self.rows[a:b] - start, self.items[a:b]


def _topk_ties_by_index(scores: Tensor, k: int) -> Tensor:
    """``torch.topk(scores, k).indices`` with a deterministic tie-break: equal scores are
    ranked by ascending movie index. ``torch.topk`` leaves the order of ties to the
    implementation (it differs between CPU and CUDA and between versions), which makes
    models with many exact ties (popularity: integer counts) give machine-dependent metrics."""
    vals, idx = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    kth = vals[:, k - 1:k]
    # a tie crosses the cut when the (k+1)-th score equals the k-th: only then can the order matter
    ambiguous = (vals[:, k] == vals[:, k - 1]) if vals.shape[1] > k else torch.zeros_like(kth[:, 0], dtype=torch.bool)
    vals, idx = vals[:, :k], idx[:, :k]
    if ambiguous.any():
        s = scores[ambiguous]
        t = kth[ambiguous]
        tied = s == t
        need = k - (s > t).sum(1, keepdim=True)
        keep = (s > t) | (tied & (torch.cumsum(tied, 1) <= need))  # the lowest-index tied movies
        idx[ambiguous] = keep.nonzero()[:, 1].view(-1, k)
    idx = idx.sort(1).values  # ascending index, then a stable sort by descending score
    return idx.gather(1, torch.sort(scores.gather(1, idx), dim=1, descending=True, stable=True).indices)


def user_metrics(topk: Tensor, users: Tensor, relevant: Tensor, num_items: int,
                 ks: Sequence[int] = (20,)) -> dict[str, Tensor]:
    """Per-user metrics of ranked lists ``topk`` ``(U, k_max)`` for ``users`` ``(U,)`` against the
    relevant interactions ``relevant`` ``(2, E)`` (a duplicated pair counts once): a ``(U,)``
    tensor per key like ``'recall@20'`` (for paired comparisons of two models on the same users).
    :func:`ranking_metrics` is their mean."""
    keys = edge_keys(relevant, num_items)  # sorted and unique: a duplicated (user, movie) pair counts once
    n_rel = torch.bincount(keys // num_items, minlength=int(users.max()) + 1)[users].float()
    if (n_rel == 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    hits = contains(keys, users.unsqueeze(1).expand_as(topk), topk, num_items).float()  # (U, k_max)
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
    :func:`user_metrics`). Keys like ``'recall@20'``."""
    return {key: v.mean().item() for key, v in user_metrics(topk, users, relevant, num_items, ks).items()}


def evaluate_scores(score_fn: Callable[[Tensor], Tensor], eval_edges: Tensor, num_items: int,
                    exclude: Sequence[Tensor] = (), ks: Sequence[int] = (20,), chunk_size: int | None = None
                    ) -> dict[str, float]:
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
