"""Items close to each other in embedding space, and "because you liked ..." explanations.

Similarity is the cosine of two items' embeddings, ``cos(i, j) = e_i·e_j / (‖e_i‖ ‖e_j‖)``: the
direction of an embedding carries the taste, its length mostly how often the model ranks the item
high (popularity). Items with few or no training likes have barely trained embeddings, so the
searches take an optional ``candidates`` mask (e.g. items with at least 10 likes).

* :func:`nearest_items` — the ``k`` most similar items of each query item;
* :func:`explain` — for each recommended item, the liked item it is most similar to;
* :func:`label_agreement` — how often an item and its ``k`` nearest neighbours share a label
  (e.g. a genre): a number behind a picture of the embedding space.

All vectorized; similarity matrices are computed in chunks of query rows to bound memory.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._fast import topk_ties_by_index

__all__ = ["nearest_items", "explain", "label_agreement"]


def _candidates(num_items: int, candidates: Tensor | None, device) -> Tensor:
    if candidates is None:
        return torch.ones(num_items, dtype=torch.bool, device=device)
    candidates = candidates.to(device)
    if candidates.dtype != torch.bool or candidates.shape != (num_items,):
        raise ValueError(f"candidates must be a boolean mask of shape ({num_items},), got "
                         f"{candidates.dtype} {tuple(candidates.shape)}")
    return candidates


@torch.no_grad()
def nearest_items(item_emb: Tensor, query, k: int = 10, candidates: Tensor | None = None,
                  chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """The ``k`` items most cosine-similar to each query item (itself excluded), among the
    ``candidates`` (boolean mask, default all). Returns ``(similarity (Q, k), index (Q, k))``,
    most similar first; ties by ascending index."""
    query = torch.as_tensor(query, dtype=torch.long, device=item_emb.device).flatten()
    num_items = item_emb.shape[0]
    if query.numel() and (int(query.min()) < 0 or int(query.max()) >= num_items):
        raise ValueError(f"query item indices must be in 0..{num_items - 1}")
    allowed = _candidates(num_items, candidates, item_emb.device)
    if int(allowed.sum()) - 1 < k:
        raise ValueError(f"k={k} neighbours requested, but only {int(allowed.sum())} candidate "
                         "items")
    unit = F.normalize(item_emb.float(), dim=1)
    sims, idx = [], []
    for start in range(0, query.numel(), chunk_size):
        q = query[start:start + chunk_size]
        s = unit[q] @ unit.T
        s[:, ~allowed] = float("-inf")
        s[torch.arange(q.numel()), q] = float("-inf")  # an item is not its own neighbour
        top = topk_ties_by_index(s, k)  # ties: lower index first
        idx.append(top)
        sims.append(s.gather(1, top))
    if not idx:
        return torch.empty(0, k), torch.empty(0, k, dtype=torch.long)
    return torch.cat(sims), torch.cat(idx)


@torch.no_grad()
def explain(item_emb: Tensor, liked, recommended) -> tuple[Tensor, Tensor]:
    """"Because you liked ...": for each recommended item, the liked item whose embedding is
    the most cosine-similar. ``liked``: the user's item indices ``(n,)``; ``recommended``:
    ``(R,)``. Returns ``(liked item index (R,), similarity (R,))``."""
    liked = torch.as_tensor(liked, dtype=torch.long, device=item_emb.device).flatten()
    rec = torch.as_tensor(recommended, dtype=torch.long, device=item_emb.device).flatten()
    if liked.numel() == 0:
        raise ValueError("explain() needs at least one liked item")
    unit = F.normalize(item_emb.float(), dim=1)
    s = unit[rec] @ unit[liked].T  # (R, n)
    best = s.max(1)
    return liked[best.indices], best.values


@torch.no_grad()
def label_agreement(item_emb: Tensor, labels: Tensor, k: int = 10,
                    candidates: Tensor | None = None) -> float:
    """Share of (item, neighbour) pairs that share at least one label, over every candidate
    item and its ``k`` nearest candidate neighbours (cosine). ``labels``: ``(num_items, G)``
    boolean (e.g. one column per genre). Compare with the same number for shuffled labels
    (``labels[torch.randperm(...)]``) to see how much of it is chance."""
    num_items = item_emb.shape[0]
    if labels.shape[0] != num_items:
        raise ValueError(f"labels must have one row per item ({num_items}), got {labels.shape[0]}")
    allowed = _candidates(num_items, candidates, item_emb.device)
    query = torch.nonzero(allowed).flatten()
    _, nbr = nearest_items(item_emb, query, k, allowed)
    lab = labels.to(item_emb.device).float()
    shared = (lab[nbr] * lab[query].unsqueeze(1)).sum(-1) > 0  # (Q, k)
    return shared.float().mean().item()
