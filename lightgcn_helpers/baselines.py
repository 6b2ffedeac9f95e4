"""Baselines evaluated with the same protocol as LightGCN.

* **Popularity**: every user gets the items liked most often in training.
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

import copy
from collections.abc import Callable

import torch
from torch import Tensor

from ._fast import quiet_sparse
from .graph import interaction_matrix, normalized_adjacency

__all__ = ["popularity_scorer", "ease_scores", "ease_scorer", "ease_memory_bytes", "EaseFit",
           "EaseMemoryError", "EASE_LAMBDA", "EASE_MAX_BYTES", "GFCF"]

EASE_LAMBDA = 100.0
"""The default L2 weight λ of EASE: the one notebook 06 chooses on MovieLens' validation split
(from 20, 50, 100, 200, 500, 1000)."""

EASE_MAX_BYTES = 8 * 10**9
"""Default memory limit of :func:`ease_scores` (8 GB): above it, a readable error instead of
a crashed kernel. ml-latest-small needs ~0.13 GB, ml-1m ~0.8 GB (:func:`ease_memory_bytes`)."""


class EaseMemoryError(MemoryError):
    """:func:`ease_scores` would need more memory than its ``max_bytes`` allows. Derived in
    notebook 06, §4."""


def popularity_scorer(train_edges: Tensor, num_items: int) -> Callable[[Tensor], Tensor]:
    """``score_fn(users) -> (B, num_items)``: each item's number of training likes. Derived in
    notebook 06, §4."""
    counts = torch.bincount(train_edges[1], minlength=num_items).float()
    return lambda users: counts.to(users.device).expand(users.numel(), -1)


def ease_memory_bytes(num_users: int, num_items: int) -> int:
    """Estimated peak bytes of :func:`ease_scores` for a ``num_users × num_items`` data set
    (derived in notebook 06, §4):

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
    users who were not in ``X`` (fold-in, :class:`lightgcn_helpers.foldin.EaseFoldIn`).
    Derived in notebook 06, §4 (fold-in: notebook 07, §4)."""

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
            # diag(XᵀMX)_j = Σ_u X_uj (M X)_uj: X is 0/1, so a sum over the interactions
            # (no U × I temporary)
            xmx = torch.zeros(num_items, dtype=x.dtype, device=x.device)
            xmx.index_add_(0, cols, self.mx[rows, cols])
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
                   max_bytes: int | None = EASE_MAX_BYTES) -> EaseFit:
        """Fit on interactions ``(2, E)`` (a duplicated pair counts once), after
        :func:`ease_memory_bytes`: a readable error instead of a crashed kernel."""
        _check_ease_memory(num_users, num_items, max_bytes)
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


def _check_ease_memory(num_users: int, num_items: int,
                       max_bytes: int | None = EASE_MAX_BYTES) -> None:
    """Raise :class:`EaseMemoryError` when :func:`ease_memory_bytes` exceeds ``max_bytes``
    (``None``: no check), before anything is allocated."""
    need = ease_memory_bytes(num_users, num_items)
    if max_bytes is not None and need > max_bytes:
        raise EaseMemoryError(
            f"EASE on {num_users:,} users × {num_items:,} items needs about {_gb(need)} "
            f"(dense float64 users × items matrices and a {min(num_users, num_items):,}² "
            f"inverse), more than max_bytes={_gb(max_bytes)}. Keep fewer users or items (e.g. the "
            f"most active users and the most popular items), or, on a machine with enough memory, "
            f"raise max_bytes "
            f"(max_bytes=None skips this check).")


def ease_scores(train_edges: Tensor, num_users: int, num_items: int, lam: float = EASE_LAMBDA,
                max_bytes: int | None = EASE_MAX_BYTES) -> Tensor:
    """EASE scores for all users, ``(num_users, num_items)`` ``float32``, computed in float64
    for accuracy on ``train_edges``' device. ``lam`` is the L2 weight λ of the item-item model.

    The smaller Gram matrix is inverted: ``users × users`` (Woodbury) when there are at most
    as many users as items, else ``items × items`` (see the module docstring). Before
    allocating anything, the peak memory is estimated with :func:`ease_memory_bytes`; above
    ``max_bytes`` (default :data:`EASE_MAX_BYTES`, 8 GB; ``None``: no check) an
    :class:`EaseMemoryError` says how much it would need and what to do. Derived in notebook
    06, §4.
    """
    fit = EaseFit.from_edges(train_edges, num_users, num_items, lam, max_bytes)
    return fit.training_scores().float()


def ease_scorer(train_edges: Tensor, num_users: int, num_items: int, lam: float = EASE_LAMBDA,
                max_bytes: int | None = EASE_MAX_BYTES) -> Callable[[Tensor], Tensor]:
    """``score_fn(users) -> (B, num_items)`` from :func:`ease_scores` (computed once). Derived
    in notebook 06, §4."""
    scores = ease_scores(train_edges, num_users, num_items, lam, max_bytes)
    return lambda users: scores[users.to(scores.device)]


class GFCF:
    """GF-CF (Shen et al., CIKM 2021): LightGCN's low-pass graph filter in closed form, with no
    training. Derived in notebook 04, §7 (the spectral view); evaluated in notebooks 06, §4
    (MovieLens, ``k`` and ``alpha`` chosen on validation) and 08, §2 (Gowalla).

    With ``R`` the users × items 0/1 training matrix, ``R̃ = D_U^-1/2 R D_I^-1/2`` (the user-item
    block of LightGCN's ``Ã``) and ``V_k`` its top-``k`` right singular vectors, the row ``r_u``
    of a user is scored as ::

        s_u = r_u R̃ᵀR̃  +  alpha · r_u D_I^-1/2 V_k V_kᵀ D_I^1/2

    The first term filters ``r_u`` over the normalised item-item graph ``R̃ᵀR̃``: a linear
    low-pass filter that scales the component along a singular vector with singular value σ by
    σ². The second keeps only the ``k`` smoothest components, each at full weight: an *ideal*
    low-pass filter. The official code uses ``k = 256``, ``alpha = 0.3`` on Gowalla. ``k = 0`` or
    ``alpha = 0`` keeps the linear part only (no SVD).

    Memory: ``R̃`` and ``R̃ᵀ`` as CSR plus the users' item lists (≈ 32 bytes per interaction),
    ``V_k`` scaled twice (``8 · I · k`` bytes: 84 MB on Gowalla at ``k = 256``) and, per call,
    dense float32 blocks of ``B × (U + I)`` for ``B`` users (290 MB on Gowalla for ``B = 1,024``).
    The SVD runs once, on the CPU in float64 (``scipy.sparse.linalg.svds``: ARPACK from a fixed
    start vector, so every run finds the same vectors); scoring runs on ``device`` (default: that
    of ``train_edges``).
    """

    def __init__(self, train_edges: Tensor, num_users: int, num_items: int, k: int = 256,
                 alpha: float = 0.3, device: torch.device | str | None = None):
        device = torch.device(device) if device is not None else train_edges.device
        self.num_users, self.num_items, self.alpha = num_users, num_items, alpha
        self.device = device
        adj = normalized_adjacency(train_edges.cpu(), num_users, num_items, layout="coo")
        row, col = adj.indices()
        block = row < num_users  # the user-item block of Ã is R̃ (rows sorted by user)
        rows, cols, weight = row[block], col[block] - num_users, adj.values()[block]
        self.norm = _csr(rows, cols, weight, (num_users, num_items)).to(device)
        self.norm_t = _csr(cols, rows, weight, (num_items, num_users)).to(device)
        self._count = torch.bincount(rows, minlength=num_users)  # training items per user
        self._start = torch.cumsum(self._count, 0) - self._count  # u's items: cols[start[u]:...]
        self._cols = cols  # sorted by user
        self.k = 0 if alpha == 0 else int(k)
        if self.k:
            deg_i = torch.bincount(cols, minlength=num_items).double()
            v = _top_right_singular_vectors(rows, cols, weight.double(), (num_users, num_items),
                                            self.k)
            inv_sqrt = torch.where(deg_i > 0, deg_i.rsqrt(), 0.0)
            self.v_in = (v * inv_sqrt[:, None]).float().to(device)  # D_I^-1/2 V_k
            self.v_out = (v * deg_i.sqrt()[:, None]).float().to(device)  # D_I^1/2 V_k

    def with_filter(self, k: int, alpha: float) -> GFCF:
        """The same fit with ``k ≤ self.k`` singular vectors and weight ``alpha``, sharing every
        matrix (no new SVD): how notebook 06 searches ``k`` and ``alpha`` on validation."""
        if not 0 <= k <= self.k:
            raise ValueError(f"k must be between 0 and the fitted k={self.k}, got {k}")
        other = copy.copy(self)
        other.alpha, other.k = alpha, 0 if alpha == 0 else k
        if other.k:
            other.v_in, other.v_out = self.v_in[:, :k], self.v_out[:, :k]
        return other

    def __call__(self, users: Tensor) -> Tensor:
        """Scores ``(len(users), num_items)``, float32, on ``device``: a ``score_fn`` for
        :func:`lightgcn_helpers.metrics.evaluate_scores` (pass it ``chunk_size=1024`` or so:
        every call multiplies by ``R̃`` twice, however few its users)."""
        row, items = self._entries(users)
        x = torch.zeros(users.numel(), self.num_items, device=self.device)
        x[row, items] = 1.0  # the users' 0/1 training rows r_u
        scores = torch.sparse.mm(self.norm_t, torch.sparse.mm(self.norm, x.T)).T  # r_u R̃ᵀR̃
        if self.k:
            xv = torch.zeros(users.numel(), self.k, device=self.device)
            xv.index_add_(0, row, self.v_in[items])  # r_u D_I^-1/2 V_k, a sum over u's items
            scores = scores + self.alpha * (xv @ self.v_out.T)
        return scores.contiguous()

    def _entries(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """``(row, item)`` of each training interaction of ``users`` (row: index in ``users``)."""
        users = users.cpu().long()
        count = self._count[users]
        row = torch.repeat_interleave(torch.arange(users.numel()), count)
        first = self._start[users] - (torch.cumsum(count, 0) - count)  # minus each row's offset
        offset = torch.repeat_interleave(first, count)
        items = self._cols[offset + torch.arange(row.numel())]
        return row.to(self.device), items.to(self.device)


def _csr(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A sparse CSR tensor from unique ``(row, col)`` entries, in any order."""
    with quiet_sparse():
        coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape,
                                      check_invariants=False)
        return coo.coalesce().to_sparse_csr()


def _top_right_singular_vectors(rows: Tensor, cols: Tensor, values: Tensor,
                                shape: tuple[int, int], k: int) -> Tensor:
    """The right singular vectors of the ``k`` largest singular values of a sparse matrix,
    ``(shape[1], k)`` float64, by ARPACK from a fixed start vector (the same on every run)."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    if not 1 <= k < min(shape):
        raise ValueError(f"GF-CF's k must be between 1 and {min(shape) - 1} (one less than the "
                         f"smaller side of the {shape[0]:,} × {shape[1]:,} matrix), got {k}; "
                         "k=0 (or alpha=0) keeps only the linear filter")
    m = sp.csr_matrix((values.numpy(), (rows.numpy(), cols.numpy())), shape=shape)
    start = np.full(min(shape), 1.0 / np.sqrt(min(shape)))
    _, sigma, vt = svds(m, k=k, v0=start, solver="arpack")
    order = np.argsort(-sigma, kind="stable")
    return torch.from_numpy(np.ascontiguousarray(vt[order].T))
