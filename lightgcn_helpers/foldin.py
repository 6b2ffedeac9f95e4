"""Recommendations for users who were not in training, without retraining (*fold-in*).

A new user ``u`` who likes the items ``S`` (``n = |S|``) is a new node with ``n`` edges. With the
trained model frozen, LightGCN's own propagation rule says what ``u``'s layers are::

    e_u^(l+1) = Σ_{i ∈ S} e_i^(l) / sqrt(n · d_i')          l = 0 .. L-1
    e_u       = α_0 e_u^(0) + Σ_{l=1..L} α_l e_u^(l)         (final embedding; score e_u · e_j)

with ``e_i^(l)`` the items' trained layer embeddings and ``d_i`` their numbers of training likes.

* **What is exact.** Layer 1 of ``u`` needs only the items' layer-0 vectors, which are parameters:
  with ``d_i' = d_i + 1`` (the new edge counted) it is exactly what propagation over the enlarged
  graph gives. For a user who *is* in the training graph (``in_graph=True``: ``d_i' = d_i``, the
  degrees already count the user) every layer ``1..L`` is exact: folding in a training user's own
  likes with its trained layer-0 vector reproduces its trained final embedding.
* **The approximation.** For layers ``≥ 2`` we keep every item's trained layer embeddings: the
  new edge would change each liked item's ``e_i^(l)`` (``l ≥ 1``) by a relative amount of about
  ``1/d_i`` (its degree grows by one, and ``u`` itself becomes one of its neighbours), which we
  neglect — as we neglect the change the new user would bring to every other node's embedding.
* **Layer 0 is not in the graph.** ``e_u^(0)`` is a free parameter that training would learn from
  ``u``'s BPR gradients; propagation cannot know it. :meth:`FoldIn.propagate` sets it to zero (the
  minimiser of the L2 term, and what a user with no gradient yet is closest to).
  :meth:`FoldIn.optimise` learns it: every item frozen, a few Adam steps on the new users' BPR
  loss + ``λ/2 ‖e_u^(0)‖²`` (negatives sampled uniformly at each step) — the counterpart of
  "recalculate the user" in ALS libraries. The final embedding is linear in ``e_u^(0)`` here, so
  each user's problem is convex (64 numbers, :meth:`FoldIn.objective`) and the result does not
  depend on the batch: all new users are solved at once.
  MF (``num_layers=0``) has *only* layer 0: its propagation fold-in is the zero vector, and only
  the optimised one is meaningful.

Nothing trained is modified: :class:`FoldIn` keeps detached copies of what it needs.

:class:`EaseFoldIn` folds users into EASE, which needs no approximation at all: its scores are
``x · B`` for a user's 0/1 like vector ``x``, with ``B`` learned from the training users only.

Profiles (several new users at once) are ``(2, E)`` ``int64`` tensors like the package's
interactions: row 0 the new user's row ``0..B-1``, row 1 the item index (see
:func:`profile_edges`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .baselines import EASE_LAMBDA, EASE_MAX_BYTES, EaseFit
from .model import combine_layers
from .sampling import edge_keys

__all__ = ["profile_edges", "check_profiles", "FoldIn", "FoldInResult", "EaseFoldIn"]


def profile_edges(liked, device: torch.device | str | None = None) -> Tensor:
    """New users' liked item indices → profiles ``(2, E)``. ``liked``: a list with one
    sequence of item indices per new user (row ``b`` for the ``b``-th sequence), one sequence
    of ints (a single user), or a ``(2, E)`` tensor (returned as is)."""
    if isinstance(liked, Tensor) and liked.dim() == 2:
        return liked.to(device) if device is not None else liked
    if isinstance(liked, Tensor):
        liked = [liked.tolist()]
    liked = list(liked)
    if liked and not isinstance(liked[0], (Sequence, Tensor, np.ndarray)):
        liked = [liked]  # one user given as a flat sequence of ints
    rows = [b for b, items in enumerate(liked) for _ in range(len(items))]
    items = [int(i) for seq in liked for i in (seq.tolist() if isinstance(seq,
                                                                          (Tensor,
                                                                           np.ndarray)) else seq)]
    out = torch.tensor([rows, items], dtype=torch.long).view(2, -1)
    return out.to(device) if device is not None else out


def _count(liked, num_users: int | None) -> int | None:
    """The number of new users: ``num_users`` if given, else one per sequence of a list of
    sequences (so that an empty one is caught), else ``None`` (max row + 1 of a tensor)."""
    if num_users is not None or isinstance(liked, Tensor):
        return num_users
    liked = list(liked)
    nested = bool(liked) and isinstance(liked[0], (Sequence, Tensor, np.ndarray))
    return len(liked) if nested else None


def check_profiles(profiles: Tensor, num_items: int, num_users: int | None = None) -> tuple[Tensor,
                                                                                            int]:
    """Validate profiles ``(2, E)``; return them with repeated (user, item) pairs dropped, and
    the number of new users ``B`` (``num_users``, default ``max row + 1``). One readable
    ``ValueError`` each for: an empty profile, an item index outside ``0..num_items-1``, a row
    outside ``0..B-1``, and a profile containing every item (nothing left to rank)."""
    if not isinstance(profiles, Tensor) or profiles.dim() != 2 or profiles.shape[0] != 2:
        raise ValueError(f"profiles must be a (2, E) tensor of (new-user row, item index), got "
                         f"{getattr(profiles, 'shape', type(profiles).__name__)}; see "
                         "profile_edges()")
    if profiles.numel() == 0:
        raise ValueError("the profile is empty: fold-in needs at least one liked item "
                         "(for a user with no likes at all, recommend the most popular items)")
    profiles = profiles.long()
    items = profiles[1]
    if int(items.min()) < 0 or int(items.max()) >= num_items:
        bad = items[(items < 0) | (items >= num_items)].unique()[:5].tolist()
        raise ValueError(f"item index(es) {bad} outside 0..{num_items - 1}: a profile holds "
                         "encoded item "
                         f"indices (graph.item_encoder.transform(raw ids)), not raw ids")
    b = int(profiles[0].max()) + 1 if num_users is None else int(num_users)
    if int(profiles[0].min()) < 0 or int(profiles[0].max()) >= b:
        raise ValueError(f"profile rows must be in 0..{b - 1}, got "
                         f"{int(profiles[0].min())}..{int(profiles[0].max())}")
    keys = edge_keys(profiles, num_items)  # sorted by row, repeats dropped
    profiles = torch.stack([keys // num_items, keys % num_items])
    n = torch.bincount(profiles[0], minlength=b)
    if bool((n == 0).any()):
        empty = torch.nonzero(n == 0).flatten()[:5].tolist()
        raise ValueError(f"new user row(s) {empty} have an empty profile: fold-in needs at least "
                         "one liked item "
                         f"(for a user with no likes at all, recommend the most popular items)")
    if bool((n >= num_items).any()):
        full = torch.nonzero(n >= num_items).flatten()[:5].tolist()
        raise ValueError(f"new user row(s) {full} like all {num_items:,} items: nothing is left to "
                         "recommend "
                         f"(and BPR has no negative to learn from)")
    return profiles, b


@dataclass
class FoldInResult:
    """What :meth:`FoldIn.optimise` returns: final embeddings ``(B, d)`` (score them against
    ``FoldIn.item_emb``), the learned layer-0 vectors ``(B, d)``, the mean objective per step
    (entry 0: before the first step) and the wall-clock seconds."""

    embedding: Tensor
    layer0: Tensor
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


class FoldIn:
    """A frozen view of a trained :class:`~lightgcn_helpers.model.LightGCN` for new users.

    ``adj``: the training graph the model was trained on (as for ``model(adj)``);
    ``train_edges``: its training interactions ``(2, E)`` (for the items' degrees ``d_i``).
    Keeps detached copies of the items' layer embeddings ``item_layers`` (``[E⁰..E^L]`` of the
    items), their final embeddings ``item_emb`` (equal to ``model(adj)[1]``), ``item_degree``
    and ``alpha``; the model itself is never modified.
    """

    def __init__(self, model, adj, train_edges: Tensor):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            layers = model.layer_embeddings(adj)
        model.train(was_training)
        off, self.num_items = model.num_users, model.num_items
        self.alpha = model.alpha.detach().clone()
        self.item_layers = [x[off:].detach().clone() for x in layers]
        # the order of LightGCN.propagate_embeddings
        self.item_emb = self._combine(self.item_layers)
        self.device = self.item_emb.device
        items = train_edges[1].to(self.device)
        if items.numel() and int(items.max()) >= self.num_items:
            raise ValueError("train_edges refer to item indices beyond the model's num_items "
                             "(pass item indices without the num_users offset)")
        self.item_degree = torch.bincount(items, minlength=self.num_items).float()

    @property
    def num_layers(self) -> int:
        return len(self.item_layers) - 1

    def _prepare(self, profiles, num_users: int | None) -> tuple[Tensor, int]:
        return check_profiles(profile_edges(profiles, self.device), self.num_items,
                              _count(profiles, num_users))

    def user_layers(self, profiles, layer0: Tensor | None = None, num_users: int | None = None,
                    in_graph: bool = False) -> list[Tensor]:
        """The new users' layers ``[e^(0), e^(1), ..., e^(L)]``, each ``(B, d)``, by the propagation
        rule of the module docstring: ``e^(0)`` is ``layer0`` (default zeros), then
        ``e_u^(l+1) = Σ_{i∈S} e_i^(l) / sqrt(n d_i')``, ``d_i' = d_i + 1`` (``in_graph=False``,
        a new user) or ``d_i`` (``in_graph=True``, a user already in the training graph)."""
        p, b = self._prepare(profiles, num_users)
        rows, items = p
        n = torch.bincount(rows, minlength=b).float()
        d = self.item_degree[items] + (0.0 if in_graph else 1.0)
        if in_graph and bool((d == 0).any()):
            raise ValueError("in_graph=True, but the profile holds items without a training edge: "
                             "such a user cannot be part of the training graph")
        w = (n[rows] * d).rsqrt().unsqueeze(1)  # 1 / sqrt(|N_u| |N_i|)
        dim = self.item_emb.shape[1]
        e0 = torch.zeros(b, dim, device=self.device) if layer0 is None else layer0.to(self.device)
        if e0.shape != (b, dim):
            raise ValueError(f"layer0 must have shape {(b, dim)}, got {tuple(e0.shape)}")
        layers = [e0]
        for k in range(self.num_layers):
            messages = w * self.item_layers[k][items]
            layers.append(torch.zeros(b, dim, device=self.device).index_add_(0, rows, messages))
        return layers

    def _combine(self, layers: list[Tensor]) -> Tensor:
        return combine_layers(layers, self.alpha)

    def _final(self, layer0: Tensor, rest: Tensor) -> Tensor:
        """The final embedding from a layer-0 vector and ``rest``, the combination of the other
        layers (``self._combine`` with layer 0 zero): ``α_0 e^(0) + rest``."""
        return layer0 * self.alpha[0] + rest

    @torch.no_grad()
    def propagate(self, profiles, layer0: Tensor | None = None, num_users: int | None = None,
                  in_graph: bool = False) -> Tensor:
        """Final embeddings ``(B, d)`` of the new users from propagation alone (``layer0``
        default zeros). No optimisation: one sparse sum per layer."""
        return self._combine(self.user_layers(profiles, layer0, num_users, in_graph))

    def objective(self, profiles, layer0: Tensor, num_users: int | None = None,
                  in_graph: bool = False,
                  l2_lambda: float = 2e-3, hard_fraction: float | None = None) -> Tensor:
        """Per-user fold-in objective ``(B,)`` of layer-0 vectors ``layer0`` ``(B, d)``, items
        frozen:

            mean_{i∈S} mean_{j∈H_u} softplus(ŷ_uj − ŷ_ui)  +  λ/2 ‖e_u^(0)‖²

        with ``H_u`` every item outside ``S`` (``hard_fraction=None``: BPR with uniform negatives,
        what :meth:`optimise` estimates by sampling) or the ``⌈hard_fraction · (I − n)⌉`` of them
        that ``u`` currently scores highest (the expected form of "the hardest 8 of 32 sampled
        negatives" of training: 0.25). Exact (every item scored, no sampling), convex in
        ``layer0`` and differentiable with respect to it."""
        p, b = self._prepare(profiles, num_users)
        layers = self.user_layers(p, None, b, in_graph)
        rest = self._combine([torch.zeros_like(layers[0])] + layers[1:])
        return self._objective(p, b, layer0.to(self.device), rest, l2_lambda, hard_fraction)

    def _objective(self, p: Tensor, b: int, e0: Tensor, rest: Tensor, l2_lambda: float,
                   hard_fraction: float | None) -> Tensor:
        rows, items = p
        user = self._final(e0, rest)
        scores = user @ self.item_emb.T  # (B, I)
        pos = scores[rows, items]  # (E,)
        liked = self._liked(p, b)
        n = torch.bincount(rows, minlength=b)
        neg_scores = scores.masked_fill(liked, float("-inf"))
        if hard_fraction is None:
            h = (self.num_items - n).float()
            sp = F.softplus(neg_scores[rows] - pos.unsqueeze(1))  # liked items: softplus(-inf) = 0
        else:
            if not 0 < hard_fraction <= 1:
                raise ValueError(f"hard_fraction must be in (0, 1] or None, got {hard_fraction}")
            h = torch.ceil(hard_fraction * (self.num_items - n).float())
            top = neg_scores.topk(int(h.max()), dim=1).values  # (B, h_max), hardest first
            valid = torch.arange(top.shape[1], device=self.device).unsqueeze(0) < h.unsqueeze(1)
            sp = F.softplus(top[rows] - pos.unsqueeze(1)) * valid[rows]
        return self._per_user(rows, sp.sum(1) / h[rows], b, e0, l2_lambda)

    def _liked(self, p: Tensor, b: int) -> Tensor:
        """``(B, I)`` boolean: the items of each new user's profile."""
        liked = torch.zeros(b, self.num_items, dtype=torch.bool, device=self.device)
        liked[p[0], p[1]] = True
        return liked

    def _per_user(self, rows: Tensor, per_pos: Tensor, b: int, e0: Tensor,
                  l2_lambda: float) -> Tensor:
        """Both objectives' end: each user's mean BPR term over its liked items, ``+ λ/2
        ‖e_u^(0)‖²``."""
        n = torch.bincount(rows, minlength=b).float()
        bpr = torch.zeros(b, device=self.device).index_add_(0, rows, per_pos) / n
        return bpr + 0.5 * l2_lambda * e0.pow(2).sum(1)

    def _sampled_objective(self, p: Tensor, b: int, e0: Tensor, rest: Tensor, neg: Tensor,
                           l2_lambda: float,
                           hard_negatives: int | None) -> Tensor:
        """:meth:`objective` with the negatives ``neg`` ``(m,)`` drawn uniformly and shared by all
        users (a user's liked items among them are skipped); ``hard_negatives``: only the ``h``
        highest-scored of them, as in training."""
        rows, items = p
        user = self._final(e0, rest)
        pos = (user[rows] * self.item_emb[items]).sum(1)  # (E,)
        liked = self._liked(p, b)
        # (B, m)
        neg_scores = (user @ self.item_emb[neg].T).masked_fill(liked[:, neg], float("-inf"))
        if hard_negatives is not None and hard_negatives < neg.numel():
            neg_scores = neg_scores.topk(hard_negatives, dim=1).values
        valid = torch.isfinite(neg_scores)
        # softplus(-inf) = 0: skipped items add nothing
        sp = F.softplus(neg_scores[rows] - pos.unsqueeze(1))
        return self._per_user(rows, sp.sum(1) / valid[rows].sum(1).clamp(min=1), b, e0, l2_lambda)

    def optimise(self, profiles, num_users: int | None = None, steps: int = 50, lr: float = 0.05,
                 l2_lambda: float = 2e-3, num_negatives: int = 256,
                 hard_negatives: int | None = None,
                 seed: int = 0, init: Tensor | None = None, in_graph: bool = False) -> FoldInResult:
        """Learn the new users' layer-0 vectors with every item frozen: ``steps`` Adam steps
        (learning rate ``lr``) on the BPR objective (:meth:`objective`) estimated at each step
        with ``num_negatives`` items drawn uniformly (seeded by ``seed``) and shared by all
        users — or, with ``hard_negatives=h``, the ``h`` of them each user scores highest (as in
        training). Starts from ``init`` (default zeros: the :meth:`propagate` fold-in). The sum
        over users is minimised and the negatives do not depend on the batch, so each user's
        result is the same alone or with others. Returns a :class:`FoldInResult` whose ``loss`` is
        the sampled objective per step (mean over users; entry 0 before the first step)."""
        start = time.perf_counter()
        if num_negatives < 1 or (hard_negatives is not None
                                 and not 1 <= hard_negatives <= num_negatives):
            raise ValueError("need num_negatives >= 1 and 1 <= hard_negatives <= num_negatives, "
                             "got "
                             f"{num_negatives} and {hard_negatives}")
        p, b = self._prepare(profiles, num_users)
        with torch.no_grad():
            layers = self.user_layers(p, None, b, in_graph)
            rest = self._combine([torch.zeros_like(layers[0])] + layers[1:])
        start_at = torch.zeros_like(rest) if init is None else init.detach().clone().to(self.device)
        e0 = start_at.requires_grad_(True)
        opt = torch.optim.Adam([e0], lr=lr)
        gen = torch.Generator().manual_seed(seed)
        history = []
        for step in range(steps + 1):
            neg = torch.randint(self.num_items, (num_negatives,), generator=gen).to(self.device)
            loss = self._sampled_objective(p, b, e0, rest, neg, l2_lambda, hard_negatives)
            history.append(loss.mean().item())
            if step == steps:
                break
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        layer0 = e0.detach()
        with torch.no_grad():
            emb = self._final(layer0, rest)
        return FoldInResult(emb, layer0, history, time.perf_counter() - start)

    def scorer(self, user_emb: Tensor) -> Callable[[Tensor], Tensor]:
        """``score_fn(rows) -> (B, num_items)`` for the new users' final embeddings (for
        ``metrics.topk_items`` / ``evaluate_scores``, masking their profiles)."""
        return lambda rows: user_emb[rows.to(user_emb.device)] @ self.item_emb.T


class EaseFoldIn:
    """EASE (Steck, 2019) for users outside its training matrix: ``scores = x · B``.

    ``B = I − P · diag(1/diag P)``, ``P = (XᵀX + λI)⁻¹``, from the training interactions
    ``X`` only. With fewer users than items ``B`` is never formed (9,724² on MovieLens): by the
    Woodbury identity ``P = (I − Xᵀ M X) / λ`` with ``M = (λI + XXᵀ)⁻¹`` (users × users), so

        x P = (x − (x Xᵀ) (M X)) / λ,        x B = x − (x P) / diag(P).

    For a training user's own row of ``X`` this is exactly ``ease_scores``' row: EASE needs no
    retraining for new users — only ``B`` (here ``M X`` and ``diag P``) from the others.
    Computed in float64, returned as float32, with :class:`~lightgcn_helpers.baselines.EaseFit`
    (the fit :func:`~lightgcn_helpers.baselines.ease_scores` uses), after the same memory check.
    """

    def __init__(self, train_edges: Tensor, num_users: int, num_items: int,
                 lam: float = EASE_LAMBDA,
                 max_bytes: int | None = EASE_MAX_BYTES):
        self.num_items = num_items
        # ease_scores' fit and check
        self.fit = EaseFit.from_edges(train_edges, num_users, num_items, lam, max_bytes)

    def scores(self, profiles, num_users: int | None = None) -> Tensor:
        """EASE scores ``(B, num_items)`` (float32) of new users given by their profiles
        ``(2, E)``."""
        device = self.fit.x.device
        p, b = check_profiles(profile_edges(profiles, device), self.num_items,
                              _count(profiles, num_users))
        x = torch.zeros(b, self.num_items, dtype=torch.float64, device=device)
        x[p[0], p[1]] = 1.0
        return self.fit.scores(x).float()

    def scorer(self, profiles, num_users: int | None = None) -> Callable[[Tensor], Tensor]:
        """``score_fn(rows) -> (B, num_items)`` over the new users' scores (computed once)."""
        s = self.scores(profiles, num_users)
        return lambda rows: s[rows.to(s.device)]
