"""Baselines evaluated with the same protocol as LightGCN.

* **Popularity**: every user gets the movies liked most often in training.
* **MF-BPR**: ``LightGCN(num_layers=0)`` trained with the same loop — plain matrix
  factorization, the model LightGCN adds propagation to.
* **EASE** (Steck, WWW 2019): a linear item-item model with the closed form
  ``B = I - P · diag(1/diag(P))``, ``P = (XᵀX + λI)⁻¹`` and scores ``S = X B``.

EASE inverts the smaller of the two Gram matrices. With more items than users
(MovieLens ml-latest-small: 610 users, 9,724 movies) it never forms the
``items × items`` matrix: with ``M = (λ I_U + X Xᵀ)⁻¹`` (users × users) the Woodbury
identity gives ``P = (I - Xᵀ M X) / λ``, hence

    X P = M X          diag(P)_j = (1 - Σ_u X_uj (M X)_uj) / λ        S = X - (M X) / diag(P)

which costs one ``U × U`` inverse (610²) instead of ``I × I`` (9,724²). With more users
than items (ml-1m: 6,040 users, 3,706 movies) the textbook ``items × items`` form is the
smaller one and is used instead. :func:`ease_memory_bytes` estimates the memory either
needs; the scores of every user for every item are dense, so EASE is for data sets
whose ``users × items`` matrix fits in memory a few times over.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .graph import interaction_matrix

__all__ = ["popularity_scorer", "ease_scores", "ease_scorer", "ease_memory_bytes", "check_ease_memory",
           "EaseFit", "EaseMemoryError", "EASE_MAX_BYTES"]

EASE_MAX_BYTES = 8 * 10**9
"""Default memory limit of :func:`ease_scores` (8 GB): above it, a readable error instead of
a crashed kernel. ml-latest-small needs ~0.13 GB, ml-1m ~0.8 GB (:func:`ease_memory_bytes`)."""


class EaseMemoryError(MemoryError):
    """:func:`ease_scores` would need more memory than its ``max_bytes`` allows."""


def popularity_scorer(train_edges: Tensor, num_items: int) -> Callable[[Tensor], Tensor]:
    """``score_fn(users) -> (B, num_items)``: each movie's number of training likes."""
    counts = torch.bincount(train_edges[1], minlength=num_items).float()
    return lambda users: counts.to(users.device).expand(users.numel(), -1)


def ease_memory_bytes(num_users: int, num_items: int) -> int:
    """Estimated peak bytes of :func:`ease_scores` for a ``num_users × num_items`` data set:

    * ``2 · 8 · U · I``: the dense interaction matrix ``X`` in float64 and one float64
      ``U × I`` product (``M X`` on the Woodbury path, ``X B`` on the items × items path);
    * ``4 · U · I``: the float32 scores that are returned;
    * ``3 · 8 · n²`` with ``n = min(U, I)``: the float64 Gram matrix, its inverse and the
      LU factorization ``torch.linalg.inv`` works on.

    An estimate for planning (the tensors themselves, not the allocator's overhead), e.g.
    ``ease_memory_bytes(610, 9724)`` ≈ 0.13 GB (ml-latest-small), ``(6040, 3706)`` ≈ 0.78 GB
    (ml-1m); measured peaks (resident memory on the CPU) stay within it.
    """
    u, i = int(num_users), int(num_items)
    n = min(u, i)
    return 2 * 8 * u * i + 4 * u * i + 3 * 8 * n * n


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e9:.4f} GB"


class EaseFit:
    """A fitted EASE model in float64 (see the module docstring): ``x``, the training users'
    0/1 rows (``U × I``), and either ``mx`` = ``M X`` and ``diag_p`` (Woodbury, ``U ≤ I``) or
    the item-item weights ``b`` (``I × I``). :meth:`scores` scores any 0/1 rows, including
    users who were not in ``X`` (fold-in, :class:`lightgcn_helpers.foldin.EaseFoldIn`)."""

    def __init__(self, rows: Tensor, cols: Tensor, num_users: int, num_items: int, lam: float):
        self.lam = float(lam)
        x = torch.zeros(num_users, num_items, dtype=torch.float64, device=rows.device)
        x[rows, cols] = 1.0
        self.x = x
        self.woodbury = num_users <= num_items
        if self.woodbury:  # M = (λ I_U + X Xᵀ)⁻¹, users × users
            g = x @ x.T
            g.diagonal().add_(self.lam)
            m = torch.linalg.inv(g)
            del g
            self.mx = m @ x  # = X P
            del m
            # diag(XᵀMX)_j = Σ_u X_uj (M X)_uj: X is 0/1, so a sum over the interactions (no U × I temporary)
            xmx = torch.zeros(num_items, dtype=x.dtype, device=x.device).index_add_(0, cols, self.mx[rows, cols])
            self.diag_p = (1.0 - xmx) / self.lam
        else:  # items × items: P = (XᵀX + λ I)⁻¹, B = I - P diag(1/diag(P))
            g = x.T @ x
            g.diagonal().add_(self.lam)
            p = torch.linalg.inv(g)
            del g
            self.b = p.div_(-torch.diagonal(p).clone())  # B_ij = -P_ij / P_jj off the diagonal ...
            self.b.diagonal().zero_()  # ... and 1 - P_jj / P_jj = 0 on it

    @classmethod
    def from_edges(cls, train_edges: Tensor, num_users: int, num_items: int, lam: float,
                   max_bytes: int | None = EASE_MAX_BYTES) -> "EaseFit":
        """Fit on interactions ``(2, E)`` (a duplicated pair counts once), after
        :func:`check_ease_memory`: a readable error instead of a crashed kernel."""
        check_ease_memory(num_users, num_items, max_bytes)
        rows, cols = interaction_matrix(train_edges, num_users, num_items).indices()  # unique pairs
        return cls(rows, cols, num_users, num_items, lam)

    def scores(self, x: Tensor) -> Tensor:
        """Scores ``x B`` (float64) of 0/1 rows ``x`` ``(B, I)`` (float64): with Woodbury,
        ``x P = (x - (x Xᵀ)(M X)) / λ`` and ``x B = x - (x P) / diag(P)``."""
        if not self.woodbury:
            return x @ self.b
        xp = (x - (x @ self.x.T) @ self.mx) / self.lam
        return x - xp / self.diag_p

    def training_scores(self) -> Tensor:
        """``S = X B`` of the training users, in place of ``X`` (Woodbury: ``X P = M X``, so
        ``S = X - (M X) / diag(P)``); the fit cannot score new rows afterwards."""
        if not self.woodbury:
            return self.x @ self.b
        return self.x.sub_(self.mx.div_(self.diag_p))


def check_ease_memory(num_users: int, num_items: int, max_bytes: int | None = EASE_MAX_BYTES) -> None:
    """Raise :class:`EaseMemoryError` when :func:`ease_memory_bytes` exceeds ``max_bytes``
    (``None``: no check), before anything is allocated."""
    need = ease_memory_bytes(num_users, num_items)
    if max_bytes is not None and need > max_bytes:
        raise EaseMemoryError(
            f"EASE on {num_users:,} users × {num_items:,} items needs about {_gb(need)} "
            f"(dense float64 users × items matrices and a {min(num_users, num_items):,}² inverse), more than "
            f"max_bytes={_gb(max_bytes)}. Keep fewer users or items (e.g. the most active users and "
            f"the most popular items), or, on a machine with enough memory, raise max_bytes "
            f"(max_bytes=None skips this check).")


def ease_scores(train_edges: Tensor, num_users: int, num_items: int, lam: float = 200.0,
                max_bytes: int | None = EASE_MAX_BYTES) -> Tensor:
    """EASE scores for all users, ``(num_users, num_items)`` ``float32``, computed in float64
    for accuracy on ``train_edges``' device. ``lam`` is the L2 weight λ of the item-item model.

    The smaller Gram matrix is inverted: ``users × users`` (Woodbury) when there are at most
    as many users as items, else ``items × items`` (see the module docstring). Before
    allocating anything, the peak memory is estimated with :func:`ease_memory_bytes`; above
    ``max_bytes`` (default :data:`EASE_MAX_BYTES`, 8 GB; ``None``: no check) an
    :class:`EaseMemoryError` says how much it would need and what to do.
    """
    return EaseFit.from_edges(train_edges, num_users, num_items, lam, max_bytes).training_scores().float()


def ease_scorer(train_edges: Tensor, num_users: int, num_items: int, lam: float = 200.0,
                max_bytes: int | None = EASE_MAX_BYTES) -> Callable[[Tensor], Tensor]:
    """``score_fn(users) -> (B, num_items)`` from :func:`ease_scores` (computed once)."""
    scores = ease_scores(train_edges, num_users, num_items, lam, max_bytes)
    return lambda users: scores[users.to(scores.device)]
