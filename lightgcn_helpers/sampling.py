"""Vectorized BPR triple sampling: (user, liked item, not-liked item).

Users are drawn only among user nodes (the rows of the training interactions,
never the bidirectional adjacency), positives from that user's training likes and
negatives only among items the user did *not* like in training. Membership of
``(u, j)`` in the training set is a binary search over sorted keys
``u * num_items + j``, so one batch costs O(B log E) with no Python loop over edges.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._fast import unique_keys

__all__ = ["BPRSampler", "edge_keys", "contains"]


def edge_keys(edges: Tensor, num_items: int) -> Tensor:
    """Sorted, unique ``int64`` keys ``user * num_items + item`` of interactions ``(2, E)``.
    Derived in notebook 05, §2."""
    return unique_keys(edges[0] * num_items + edges[1])  # torch.unique, which sorts


def contains(sorted_keys: Tensor, users: Tensor, items: Tensor, num_items: int) -> Tensor:
    """Boolean mask: is ``(users[b], items[b])`` among ``sorted_keys``? Derived in notebook 05,
    §2."""
    query = users * num_items + items
    if sorted_keys.numel() == 0:
        return torch.zeros_like(query, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, query).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == query


class BPRSampler:
    """Draws BPR triples from the training interactions. Derived in notebook 05, §2.

    ``epoch(batch_size)`` walks every training interaction once in a random order
    (the usual LightGCN epoch) and yields ``(users, pos_items, neg_items)`` batches,
    each ``(B,)`` ``int64`` on the interactions' device; ``sample(batch_size)`` draws
    one batch of interactions uniformly with replacement. Item indices are *not*
    offset by ``num_users``.
    """

    def __init__(self, train_edges: Tensor, num_users: int, num_items: int, seed: int = 0,
                 max_rounds: int = 100):
        if train_edges.dim() != 2 or train_edges.shape[0] != 2 or train_edges.shape[1] == 0:
            raise ValueError(f"train_edges must be a non-empty (2, E) tensor, got shape "
                             f"{tuple(train_edges.shape)}")
        if int(train_edges[0].max()) >= num_users or int(train_edges[1].max()) >= num_items:
            raise ValueError("train_edges refer to a user or item index beyond num_users / "
                             "num_items; pass item indices without the num_users offset")
        self.edges = train_edges
        self.num_users, self.num_items = num_users, num_items
        self.device = train_edges.device
        self.keys = edge_keys(train_edges, num_items)
        self.max_rounds = max_rounds
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def _draw(self, count: int) -> Tensor:
        return torch.randint(self.num_items, (count,), device=self.device,
                             generator=self.generator)

    def negatives(self, users: Tensor, num_negatives: int = 1) -> Tensor:
        """For each user, items this user did not like in training (rejection sampling:
        only the rejected entries are redrawn and checked again, a handful of vectorized
        rounds). Shape ``(B,)`` for ``num_negatives=1``, else ``(B, num_negatives)``."""
        shape = users.shape if num_negatives == 1 else (users.numel(), num_negatives)
        flat_users = users.reshape(-1, 1).expand(-1, num_negatives).reshape(-1)
        neg = self._draw(flat_users.numel())
        todo = contains(self.keys, flat_users, neg, self.num_items).nonzero().squeeze(1)
        for _ in range(self.max_rounds):
            if todo.numel() == 0:
                return neg.view(shape)
            neg[todo] = self._draw(todo.numel())
            todo = todo[contains(self.keys, flat_users[todo], neg[todo], self.num_items)]
        if todo.numel():
            raise RuntimeError("Could not draw negatives: some users liked (almost) every item.")
        return neg.view(shape)

    def _triples(self, idx: Tensor, num_negatives: int) -> tuple[Tensor, Tensor, Tensor]:
        users, pos = self.edges[0, idx], self.edges[1, idx]
        return users, pos, self.negatives(users, num_negatives)

    def sample(self, batch_size: int, num_negatives: int = 1) -> tuple[Tensor, Tensor, Tensor]:
        idx = torch.randint(self.edges.shape[1], (batch_size,), device=self.device,
                            generator=self.generator)
        return self._triples(idx, num_negatives)

    def epoch(self, batch_size: int,
              num_negatives: int = 1) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        perm = torch.randperm(self.edges.shape[1], device=self.device, generator=self.generator)
        for start in range(0, perm.numel(), batch_size):
            yield self._triples(perm[start:start + batch_size], num_negatives)

    def epoch_shared(self, batch_size: int, num_negatives: int
                     ) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Like :meth:`epoch`, but negatives are drawn once per *distinct user* of the batch
        and shared by all of that user's positives: yields ``(users (B,), pos (B,), row (B,),
        neg (U_b, num_negatives))`` where ``neg[row[b]]`` are the negatives of ``users[b]``.
        Every ``(users[b], pos[b], neg[row[b], k])`` is a valid BPR triple; scoring ``U_b·n``
        instead of ``B·n`` negatives makes many negatives cheap. Derived in notebook 05, §4."""
        perm = torch.randperm(self.edges.shape[1], device=self.device, generator=self.generator)
        for start in range(0, perm.numel(), batch_size):
            idx = perm[start:start + batch_size]
            users, pos = self.edges[0, idx], self.edges[1, idx]
            distinct, row = self._distinct(users)
            neg = self.negatives(distinct, num_negatives).view(distinct.numel(), -1)
            yield users, pos, row, neg

    def _distinct(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """``torch.unique(users, return_inverse=True)`` for ids below ``num_users``, by counting
        (O(num_users + B), no sort: ``unique`` sorts, which is slow on the CPU for large
        batches)."""
        present = torch.bincount(users, minlength=self.num_users) > 0
        distinct = present.nonzero().squeeze(1)
        return distinct, (torch.cumsum(present, 0) - 1)[users]

    def batches_per_epoch(self, batch_size: int) -> int:
        return -(-self.edges.shape[1] // batch_size)
