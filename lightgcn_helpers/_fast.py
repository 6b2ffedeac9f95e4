"""The fast internals behind the teaching modules: read the lessons first, then this.

Every function here computes an expression that a notebook writes out plainly — only faster,
or in less memory — and ``tests/test_fast.py`` checks each against that plain expression
(values, and gradients where there are any). The teaching code calls them through one seam
each:

=========================  ======================================================  ==============
internal                   plain expression                                        called by
=========================  ======================================================  ==============
:func:`sorted_unique`      ``np.unique(values)``                                    ``graph``
:func:`positions`          ``np.searchsorted(classes, raw)``, and which are absent  ``graph``
:func:`unique_keys`        ``torch.unique(keys)``                                   ``graph``
:func:`sparse_matmul`      ``torch.sparse.mm(adj, x)`` (backward: ``adjᵀ @ grad``)  ``model``
:func:`pair_scores`        ``(emb[a].unsqueeze(1) * emb[b]).sum(-1)``               ``loss``
:func:`shared_l2`          ``l2_regularization(e_u, e_i, e_j)`` per shared row      ``loss``
:class:`ExcludedIndex`     ``scores[users == u, items of u] = -inf``, per chunk     ``metrics``
:func:`topk_ties_by_index` ``torch.sort(scores, descending, stable)[:, :k]``        ``metrics``
:func:`auto_chunk_size`    a memory heuristic: users scored at once                 ``metrics``
:func:`quiet_sparse`       no expression: silences PyTorch's sparse-CSR warnings    ``graph`` …
=========================  ======================================================  ==============
"""
from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

# --------------------------------------------------------------------------- id encoding


def _modest_span(values: np.ndarray) -> tuple[int, int] | None:
    """``(low, span)`` of signed-integer ``values`` whose range is small enough for a table
    (at most ``8 · len + 2²⁰`` entries), else ``None``."""
    if values.dtype.kind != "i" or values.size == 0:
        return None
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    return (low, span) if span <= 8 * values.size + (1 << 20) else None


def sorted_unique(values) -> np.ndarray:
    """``np.unique(values)``: the sorted distinct values — for integers in a modest range by
    counting (``np.bincount``), else by one sort and a comparison of neighbours (numpy 2's
    hash-based ``np.unique`` is ~50× slower on 100,000 integer ids)."""
    values = np.asarray(values).ravel()
    modest = _modest_span(values)
    if modest is not None:
        low, span = modest
        present = np.bincount(values - low, minlength=span) > 0
        return (np.flatnonzero(present) + low).astype(values.dtype)
    ordered = np.sort(values)
    if ordered.size == 0:
        return ordered
    first = np.empty(ordered.size, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def positions(classes: np.ndarray, raw: np.ndarray,
              table: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(np.searchsorted(classes, raw), unknown)`` for sorted, distinct ``classes``; ``unknown``
    marks the ``raw`` values that are not among them (their positions mean nothing). With
    ``table`` (:func:`position_table`, integer ids) the positions are looked up instead of
    searched for: one gather per id instead of a binary search."""
    if table is None:
        idx = np.searchsorted(classes, raw)
        return idx, classes[np.minimum(idx, len(classes) - 1)] != raw
    low, high = classes[0], classes[-1]
    if raw.size and raw.min() >= low and raw.max() <= high:  # the usual case: no range check
        idx = table[raw - low]
        return idx, idx < 0
    inside = (raw >= low) & (raw <= high)
    idx = table[np.where(inside, raw - low, 0)]
    return idx, ~inside | (idx < 0)


def position_table(classes: np.ndarray) -> np.ndarray | None:
    """For sorted, distinct signed-integer ``classes`` in a modest range: ``table[id -
    classes[0]]`` = the position of ``id``, -1 for the ids in between that are not classes.
    ``None`` for anything else (then :func:`positions` searches)."""
    modest = _modest_span(classes)
    if modest is None:
        return None
    table = np.full(modest[1], -1, dtype=np.int64)
    table[classes - classes[0]] = np.arange(len(classes), dtype=np.int64)
    return table


def unique_keys(keys: Tensor) -> Tensor:
    """``torch.unique(keys)`` (sorted) of an ``int64`` tensor; on the CPU through numpy's sort,
    several times faster than ``torch.unique`` there."""
    if keys.device.type != "cpu":
        return torch.unique(keys)
    return torch.from_numpy(sorted_unique(keys.numpy()))


# --------------------------------------------------------------------------- sparse products


@contextlib.contextmanager
def quiet_sparse() -> Iterator[None]:
    """Silence PyTorch's sparse-CSR warnings for the block: "Sparse CSR tensor support is in
    beta" (building a CSR matrix, and PyG turning a ``SparseTensor`` into one for every product
    on the CPU) and "invariant checks are implicitly disabled" (the invariant checks are switched
    off explicitly instead: the indices come from the package's own encoders)."""
    with warnings.catch_warnings(), torch.sparse.check_sparse_tensor_invariants(enable=False):
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        yield


class _SparseMM(torch.autograd.Function):
    """``adj @ x`` for a torch sparse ``adj`` (COO or CSR), with the backward pass given its
    transpose explicitly: ``∂L/∂x = adjᵀ @ ∂L/∂out``. Pass ``adj_t = adj`` itself when ``adj`` is
    symmetric (LightGCN's ``Ã``): the backward then needs no transpose at all, where PyTorch's
    generic sparse backward re-transposes the matrix at every step (~4× slower on the CPU).

    No gradient flows into ``adj`` / ``adj_t`` (:func:`sparse_matmul` uses ``torch.sparse.mm``
    when the matrix requires one). ``adj_t`` is kept with ``ctx.save_for_backward`` (only when
    ``x`` needs a gradient), which accepts sparse COO and CSR tensors (checked on torch 2.13)
    and raises if the matrix is modified in place between the forward and the backward pass."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            raise RuntimeError("_SparseMM gives no gradient for the sparse matrix; use "
                               "torch.sparse.mm when the matrix's values require grad")
        ctx.save_for_backward(adj_t if ctx.needs_input_grad[2] else None)
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (adj_t,) = ctx.saved_tensors
        grad_x = torch.sparse.mm(adj_t, grad) if ctx.needs_input_grad[2] else None
        return None, None, grad_x


def sparse_entries(adj: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(row, col, value)`` of a COO or CSR matrix, sorted row-major, duplicates summed."""
    if adj.layout == torch.sparse_csr:
        crow = adj.crow_indices()
        rows = torch.arange(adj.shape[0], device=crow.device)
        row = torch.repeat_interleave(rows, crow.diff())
        col, val = adj.col_indices(), adj.values()
        key = row * adj.shape[1] + col
        if key.numel() > 1 and not bool((key[1:] > key[:-1]).all()):  # unsorted or repeated
            coo = torch.sparse_coo_tensor(torch.stack([row, col]), val, adj.shape)
            return sparse_entries(coo)
        return row, col, val
    adj = adj.coalesce()
    return adj.indices()[0], adj.indices()[1], adj.values()


def is_symmetric(adj: Tensor) -> bool:
    """Is the torch sparse (COO or CSR) matrix exactly equal to its transpose? Compares the
    entries ``(i, j, value)`` with ``(j, i, value)``, vectorized (one sort, no dense matrix)."""
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        return False
    row, col, val = sparse_entries(adj)
    n = adj.shape[0]
    order = torch.argsort(col * n + row)  # the transpose's entries, in row-major order
    return bool(torch.equal(col[order], row) and torch.equal(row[order], col)
                and torch.equal(val[order], val))


def sparse_transpose(adj: Tensor) -> Tensor:
    """``adjᵀ`` in ``adj``'s layout (COO or CSR) — ``adj`` itself when it is symmetric
    (:func:`is_symmetric`), so that a symmetric ``Ã`` is never copied."""
    if is_symmetric(adj):
        return adj
    if adj.layout == torch.sparse_csr:
        return adj.t().to_sparse_csr()  # .t() of a CSR matrix is CSC: convert back
    return adj.t().coalesce()


class TransposeCache:
    """``adjᵀ`` for the backward pass of a sparse ``adj``, determined once per adjacency
    *object*: the first call checks symmetry (:func:`sparse_transpose`: ``adj`` itself when
    symmetric) and remembers the answer under ``id(adj)``, so training, which propagates over the
    same ``Ã`` at every step, pays the check once. An entry is dropped when ``adj`` is garbage
    collected (the cache never keeps ``adj`` alive) and recomputed when ``adj`` is modified in
    place (its version counter changes). Copies and pickles of the cache start empty."""

    def __init__(self):
        # id(adj) -> (weak reference to adj, adj._version, adjᵀ or None when adj is symmetric)
        self._entries: dict[int, tuple[weakref.ref, int, Tensor | None]] = {}

    def __reduce__(self):  # weak references cannot be copied or pickled: rebuild lazily
        return (TransposeCache, ())

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, adj: Tensor) -> Tensor:
        key, entries = id(adj), self._entries
        hit = entries.get(key)
        if hit is not None and hit[0]() is adj and hit[1] == adj._version:
            return adj if hit[2] is None else hit[2]
        adj_t = sparse_transpose(adj)

        def forget(ref, key=key, entries=entries):  # adj was garbage collected
            if key in entries and entries[key][0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(adj, forget), adj._version, None if adj_t is adj else adj_t)
        return adj_t


def sparse_matmul(adj: Tensor, x: Tensor, transposes: TransposeCache) -> Tensor:
    """``torch.sparse.mm(adj, x)``, with a cheap backward pass: ``∂L/∂x = adjᵀ @ ∂L/∂out``
    through ``adjᵀ`` from ``transposes`` (``adj`` itself for a symmetric ``Ã``). Falls back to
    ``torch.sparse.mm`` when ``adj``'s values require a gradient (learnable edge weights:
    PyTorch's generic backward) or when no gradient is needed at all."""
    if adj.requires_grad or not (x.requires_grad and torch.is_grad_enabled()):
        return torch.sparse.mm(adj, x)
    return _SparseMM.apply(adj, transposes(adj), x)


# --------------------------------------------------------------------------- BPR scores

_CHUNK = 2048  # rows of candidates scored at once: keeps temporaries at a few MB


def chunked_scores(emb: Tensor, a: Tensor, b: Tensor, emb_b: Tensor | None = None) -> Tensor:
    """``emb[a[r]] · emb_b[b[r, k]]`` (``emb_b`` defaults to ``emb``), shape ``b.shape``, in
    chunks of rows; no gradient (see :func:`pair_scores`)."""
    emb_b = emb if emb_b is None else emb_b
    out = torch.empty(b.shape, dtype=emb.dtype, device=emb.device)
    for start in range(0, a.numel(), _CHUNK):  # a loop over chunks of rows, not over pairs
        rows = slice(start, start + _CHUNK)
        out[rows] = torch.bmm(emb_b[b[rows]], emb[a[rows]].unsqueeze(2)).squeeze(2)
    return out


class _PairScores(torch.autograd.Function):
    """:func:`chunked_scores` with a gradient: neither pass materialises the ``(R, n, d)`` tensor
    of gathered rows or of their gradients (hundreds of MB on a graph like Gowalla, which the
    allocator would map and page-fault into memory at every step). The backward pass adds the
    gradients into the ``(N, d)`` table with ``index_add_``."""

    @staticmethod
    def forward(ctx, emb: Tensor, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(emb, a, b)
        return chunked_scores(emb, a, b)

    @staticmethod
    def backward(ctx, grad: Tensor):
        emb, a, b = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        out = torch.zeros_like(emb)
        for start in range(0, a.numel(), _CHUNK):
            rows = slice(start, start + _CHUNK)
            g, user_rows, cand_rows = grad[rows], emb[a[rows]], emb[b[rows]]
            # Σ_k g_rk e_b into the row a[r]; g_rk e_a into every candidate row b[r, k]
            out.index_add_(0, a[rows], torch.bmm(g.unsqueeze(1), cand_rows).squeeze(1))
            per_candidate = (g.unsqueeze(2) * user_rows.unsqueeze(1)).reshape(-1, emb.shape[1])
            out.index_add_(0, b[rows].reshape(-1), per_candidate)
        return out, None, None


def pair_scores(emb: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``(emb[a].unsqueeze(1) * emb[b]).sum(-1)``: inner products ``emb[a[r]] · emb[b[r, k]]``,
    shape ``b.shape`` — one user row ``a[r]`` against its ``n`` candidate rows ``b[r]`` —
    differentiable in ``emb``, in chunks of rows (memory-lean, :class:`_PairScores`)."""
    if torch.is_grad_enabled() and emb.requires_grad:
        return _PairScores.apply(emb, a, b)
    return chunked_scores(emb, a, b)


def shared_l2(emb0: Tensor, users: Tensor, pos: Tensor, row: Tensor, neg: Tensor) -> Tensor:
    """``½ (Σ_b ‖e_u⁰‖² + Σ_b ‖e_i⁰‖² + Σ_b mean_k ‖e_{neg[row[b], k]}⁰‖²) / B``: the L2 term of
    a batch whose negatives are shared per user (``neg`` ``(U_b, n)``, ``row`` ``(B,)``),
    from the squared norm of every node — gathering scalars instead of d-dimensional rows. A
    negative row of a user with c positives in the batch counts c/n times."""
    batch = users.numel()
    rows, n = neg.shape
    sq = emb0.pow(2).sum(-1)  # (N,)
    per_row = torch.bincount(row, minlength=rows).to(sq.dtype) / n
    return 0.5 * (sq[users].sum() + sq[pos].sum() + (sq[neg] * per_row.unsqueeze(1)).sum()) / batch


# --------------------------------------------------------------------------- ranking


def auto_chunk_size(num_items: int, target_bytes: int = 8 << 20) -> int:
    """Users per chunk so that a chunk's ``float32`` scores take about ``target_bytes``
    (between 16 and 1,024 users): 215 on MovieLens (9,724 movies), 51 on Gowalla (40,981
    items). Larger blocks are fresh memory maps that the kernel must fault in and zero on every
    chunk, which costs more than the extra calls."""
    return int(max(16, min(1024, target_bytes // (4 * max(num_items, 1)))))


class ExcludedIndex:
    """Every excluded item of every evaluated user, found once, vectorized: the excluded
    interactions ``(2, E)`` (several tensors, concatenated) are sorted by user with a CSR-like
    pointer per user, and the slices of ``users`` — in their order — are gathered in one pass
    (``repeat_interleave`` of the per-user counts). The entries of ``users[start:stop]`` are
    then one contiguous slice: a chunk costs no search at all. On ``users``' device; memory
    O(E). Plain expression: for each chunk, every ``(row, item)`` with ``users[start + row]``
    the user of an excluded interaction ``(user, item)``."""

    def __init__(self, exclude: Sequence[Tensor], num_items: int, users: Tensor):
        device = users.device
        edges = self._edges(exclude, num_items, device)
        n_rows = max(int(users.max()) + 1 if users.numel() else 0,
                     int(edges[0].max()) + 1 if edges.numel() else 0)
        items = edges[1, torch.argsort(edges[0], stable=True)]  # grouped by user
        counts = torch.bincount(edges[0], minlength=n_rows)
        ptr = torch.cumsum(counts, 0) - counts  # start of each user's group
        cnt = counts[users]  # per evaluated user, in the order of ``users``
        ends = torch.cumsum(cnt, 0)
        total = int(ends[-1]) if ends.numel() else 0
        self.rows = torch.repeat_interleave(torch.arange(users.numel(), device=device), cnt,
                                            output_size=total)
        within = torch.arange(total, device=device) - (ends - cnt)[self.rows]  # 0..cnt-1 per user
        self.items = items[ptr[users][self.rows] + within]
        # users[i]'s entries: offsets[i]:offsets[i+1]
        self.offsets = torch.cat([ends.new_zeros(1), ends]).tolist()

    @staticmethod
    def _edges(exclude: Sequence[Tensor], num_items: int, device) -> Tensor:
        excl = [e.to(device).long() for e in exclude if e.numel()]
        edges = torch.cat(excl, 1) if excl else torch.empty(2, 0, dtype=torch.long, device=device)
        if edges.numel() and (int(edges.min()) < 0 or int(edges[1].max()) >= num_items):
            raise ValueError(f"excluded interactions must have users >= 0 and items in "
                             f"0..{num_items - 1}, got users {int(edges[0].min())}.."
                             f"{int(edges[0].max())}, items {int(edges[1].min())}.."
                             f"{int(edges[1].max())}")
        return edges

    def entries(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """``(rows, items)``: every excluded item of ``users[start:stop]``, ``rows`` counted
        from ``start``."""
        a, b = self.offsets[start], self.offsets[min(stop, len(self.offsets) - 1)]
        return self.rows[a:b] - start, self.items[a:b]


def topk_ties_by_index(scores: Tensor, k: int) -> Tensor:
    """``torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]``: the top ``k``
    with a deterministic tie-break, equal scores ranked by ascending index — without sorting
    whole rows. ``torch.topk`` leaves the order of ties to the implementation (it differs
    between CPU and CUDA and between versions), which makes models with many exact ties
    (popularity: integer counts) give machine-dependent metrics."""
    vals, idx = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    kth = vals[:, k - 1:k]
    # a tie crosses the cut when the (k+1)-th score equals the k-th: only then can order matter
    if vals.shape[1] > k:
        ambiguous = vals[:, k] == vals[:, k - 1]
    else:
        ambiguous = torch.zeros_like(kth[:, 0], dtype=torch.bool)
    idx = idx[:, :k]
    if ambiguous.any():
        s = scores[ambiguous]
        t = kth[ambiguous]
        tied = s == t
        need = k - (s > t).sum(1, keepdim=True)
        keep = (s > t) | (tied & (torch.cumsum(tied, 1) <= need))  # the lowest-index tied items
        idx[ambiguous] = keep.nonzero()[:, 1].view(-1, k)
    idx = idx.sort(1).values  # ascending index, then a stable sort by descending score
    order = torch.sort(scores.gather(1, idx), dim=1, descending=True, stable=True).indices
    return idx.gather(1, order)
