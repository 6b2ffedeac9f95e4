"""A user-level hold-out for measuring recommendations to new users (cold start).

An edge split (notebook 02) hides some likes of *every* user: each test user is still in the
training graph. To measure what happens to someone the model has never seen, whole users are
held out instead:

1. :func:`holdout_users` draws a share of the users with at least ``min_likes`` likes; all their
   edges leave the training graph (the model is trained on the other users only);
2. :func:`reveal_likes` shows, for each held-out user, ``n`` of their likes (a seeded random
   order per user, the same for every ``n``: the 3 revealed likes contain the 1, the 5 contain
   the 3, ...) and keeps the rest hidden;
3. a method folds the user in from the revealed likes, ranks every item with the revealed ones
   masked, and is scored on the hidden ones (Recall@K, NDCG@K: ``metrics.evaluate_scores``).

Everything is vectorized (one sort); no loop over users or edges.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["holdout_users", "reveal_likes", "rows_of"]


def holdout_users(edges: Tensor, num_users: int, share: float = 0.2, min_likes: int = 30,
                  seed: int = 0) -> Tensor:
    """Sorted indices of ``round(share · eligible)`` users drawn at random (``seed``) among the
    users with at least ``min_likes`` interactions in ``edges`` ``(2, E)``."""
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    likes = torch.bincount(edges[0].cpu(), minlength=num_users)
    eligible = torch.nonzero(likes >= min_likes).flatten()
    count = round(share * eligible.numel())
    if count == 0:
        raise ValueError(f"no user is held out: {eligible.numel()} users have at least {min_likes} "
                         "likes, "
                         f"and {share:g} of them rounds to 0; lower min_likes or raise share")
    gen = torch.Generator().manual_seed(seed)
    pick = eligible[torch.randperm(eligible.numel(), generator=gen)[:count]]
    return torch.sort(pick).values


def rows_of(edges: Tensor, users: Tensor) -> Tensor:
    """``edges`` ``(2, E)`` of the given (sorted) ``users`` only, their user index replaced by
    its position in ``users`` (``0..len(users)-1``): the new users' "rows"."""
    users = users.to(edges.device)
    pos = torch.searchsorted(users, edges[0]).clamp(max=users.numel() - 1)
    keep = users[pos] == edges[0]
    return torch.stack([pos[keep], edges[1, keep]])


def reveal_likes(edges: Tensor, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split every user's interactions in ``edges`` ``(2, E)`` into ``n`` revealed ones and the
    hidden rest: ``(revealed (2, n·U), hidden (2, E − n·U))``. The order within a user is random
    but fixed by ``seed`` (and the edges), so a larger ``n`` reveals a superset. Every user
    needs more than ``n`` interactions (else nothing is left to predict): ``ValueError``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    users = edges[0]
    counts = torch.bincount(users)
    present = counts > 0
    if bool((counts[present] <= n).any()):
        few = int(counts[present].min())
        raise ValueError(f"a user has only {few} interaction(s): revealing n={n} would leave "
                         "nothing hidden; "
                         f"hold out users with more than {n} likes")
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(users.numel(), generator=gen).to(users.device)
    order = torch.argsort(noise)  # random ...
    order = order[torch.argsort(users[order], stable=True)]  # ... within each user
    start = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(users.numel(), device=users.device) - start[users[order]]
    shown = rank < n
    return edges[:, shown], edges[:, ~shown]
