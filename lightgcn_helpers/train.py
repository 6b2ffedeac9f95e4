"""Mini-batch BPR training with validation, early stopping and best-weight restore.

Each step: propagate E⁰ over the *training* graph only (the dominant cost), look
up the final embeddings of a batch of (user, liked movie) pairs and of
``num_negatives`` not-liked movies drawn per distinct user of the batch (shared by
that user's pairs, :meth:`BPRSampler.epoch_shared`), and minimise the BPR loss of
each pair against the ``hard_negatives`` of those candidates the model currently
scores highest (dynamic negative sampling), plus λ·L2 of the layer-0 embeddings
(:func:`~lightgcn_helpers.loss.bpr_shared_negatives_loss`), with Adam, the learning
rate decaying by ``lr_decay`` per epoch. Many candidates per user give a much stronger
signal per propagation, sharing them keeps the extra cost small, and keeping only the
hardest stops the easy ones from diluting the gradient. Every
``eval_every`` epochs the validation Recall@K is computed from the final
propagated embeddings, masking training movies; the best weights are kept.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .env import quiet_progress
from .loss import bpr_shared_negatives_loss, mixed_negatives_loss
from .metrics import evaluate_embeddings
from .model import LightGCN
from .sampling import BPRSampler

__all__ = ["TrainConfig", "TrainResult", "RECIPES", "train_bpr", "train_cached", "evaluate_model"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_bpr` (tuned on the validation split only)."""

    epochs: int = 250
    batch_size: int = 8192
    lr: float = 0.03
    l2_lambda: float = 2e-3  # λ of the layer-0 L2 term of the BPR objective (not the optimizer's weight decay)
    num_negatives: int = 32  # negatives per user and batch, shared by the user's positives
    hard_negatives: int | None = 8  # each positive trains against this many highest-scored of them (None: all)
    lr_decay: float = 0.985  # learning rate multiplied by this after every epoch (1.0: constant)
    eval_every: int = 5
    patience: int = 8  # evaluations without improvement before stopping
    k: int = 20
    seed: int = 0
    shared_negatives: bool = True  # False: every (user, liked movie) pair draws its own negatives (the paper)
    mix_negatives: bool = False  # True: train against hard_negatives *synthesised* negatives per pair (MixGCF)

    def __post_init__(self):
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be at least 1, got {self.num_negatives}")
        if self.hard_negatives is not None and not 1 <= self.hard_negatives <= self.num_negatives:
            raise ValueError(f"hard_negatives={self.hard_negatives} must be between 1 and num_negatives="
                             f"{self.num_negatives}; lower it, or set hard_negatives=None to train on all negatives")
        if self.mix_negatives and self.hard_negatives is None:
            raise ValueError("mix_negatives=True needs hard_negatives: the number of synthesised negatives per pair")


RECIPES: dict[str, TrainConfig] = {
    # He et al. (SIGIR 2020): one uniform negative per (user, item) pair, Adam lr 1e-3, batch 2,048,
    # lambda 1e-4, constant learning rate, about 1,000 epochs.
    "paper": TrainConfig(epochs=1000, batch_size=2048, lr=1e-3, l2_lambda=1e-4, num_negatives=1,
                         hard_negatives=None, lr_decay=1.0, shared_negatives=False),
    # The series' recipe, tuned on MovieLens' validation split (notebook 05): the defaults.
    "series": TrainConfig(),
    # The same recipe with batch size, learning rate, decay and lambda chosen for the LightGCN
    # paper's Gowalla split on a validation split carved from its training file
    # (benchmarks/reproduce_paper.py --tune); no early stopping: a fixed number of epochs.
    # Chosen by validation Recall@20 on 20 % of the training file (lambda 1e-4 over-fitted after
    # 30 epochs, 3e-3 learned slower; with 1e-3 the curve flattens after ~120 epochs: 150 fixed).
    # Test: Recall@20 0.1802, NDCG@20 0.1536 (benchmarks/records/gowalla-series.json).
    "series-gowalla": TrainConfig(epochs=150, batch_size=65536, lr=0.03, l2_lambda=1e-3, num_negatives=32,
                                  hard_negatives=8, lr_decay=0.99, eval_every=10),
    # The hardest 8 of 64 candidates: +0.0036 validation Recall@20 over 8 of 32 at epoch 75, but not
    # better on the test file (0.1795 / 0.1532 after 300 epochs, benchmarks/records/gowalla-series-64.json),
    # whose items are more popular than a random share of train.txt (benchmarks/gowalla_splits.py);
    # kept for that comparison, not the default: no better on test, three times the cost.
    "series-gowalla-64": TrainConfig(epochs=300, batch_size=65536, lr=0.03, l2_lambda=1e-3, num_negatives=64,
                                     hard_negatives=8, lr_decay=0.995, eval_every=10),
    # series-gowalla with the 32 candidates drawn for every (user, item) pair instead of once per user
    # and batch: ahead of it at every evaluation on a validation share drawn to be as popular as the
    # test file (reproduce_paper.py --tune --val-popularity 0.15; records/gowalla-tuning-popularity.json),
    # and on the test file: Recall@20 0.1807, NDCG@20 0.1542 in 40.8 min (records/gowalla-series-pairs.json);
    # about 2.8 times the time per epoch (32 candidates scored per pair, not per user).
    "series-gowalla-pairs": TrainConfig(epochs=150, batch_size=65536, lr=0.03, l2_lambda=1e-3, num_negatives=32,
                                        hard_negatives=8, lr_decay=0.99, eval_every=10, shared_negatives=False),
    # series-gowalla training against one synthesised negative per pair (MixGCF: in every layer the
    # hardest of 64 candidates, mixed with the liked item), lambda 3e-3 (1e-3 over-fitted early).
    # Chosen on the popularity-matched validation split (records/gowalla-tuning-popularity.json): ahead
    # of series-gowalla and series-gowalla-pairs at every evaluation up to epoch 50, when the test run was fixed.
    # Test: Recall@20 0.1842, NDCG@20 0.1568 in 42.2 min on the 2-core CPU, above the paper's 0.1830 / 0.1554
    # (records/gowalla-series-mix.json; 16.4 s per epoch, about 2.9 times series-gowalla's).
    "series-gowalla-mix": TrainConfig(epochs=150, batch_size=65536, lr=0.03, l2_lambda=3e-3, num_negatives=64,
                                      hard_negatives=1, lr_decay=0.99, eval_every=10, mix_negatives=True),
}


@dataclass
class TrainResult:
    """History of a run: per-epoch loss and per-evaluation validation metric."""

    config: TrainConfig
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_epochs: list[int] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = float("-inf")
    seconds: float = 0.0
    eval_seconds: float = 0.0  # of `seconds`, the time spent on validation
    from_cache: bool = False  # True when train_cached loaded these weights instead of training

    def as_dict(self) -> dict:
        d = asdict(self)
        d["config"] = asdict(self.config)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainResult:
        d = dict(d)
        return cls(config=TrainConfig(**d.pop("config")), **d)


def bpr_step(model, adj, opt, cfg: TrainConfig, users, pos_nodes, row, neg_nodes,
             generator: torch.Generator | None = None) -> float:
    """One optimisation step of :func:`train_bpr`: propagate the whole training graph, the BPR
    loss of the batch (negatives shared per user, the ``cfg.hard_negatives`` hardest trained,
    ``cfg.l2_lambda``; with ``cfg.mix_negatives`` against synthesised negatives, whose mixing
    weights come from ``generator``), backward, optimiser. Items are *node* ids (offset by the
    number of users). Returns the batch's mean loss."""
    if cfg.mix_negatives:
        loss = mixed_negatives_loss(model.layer_embeddings(adj), model.alpha, users, pos_nodes, row, neg_nodes,
                                    cfg.l2_lambda, synthetic=cfg.hard_negatives, generator=generator)
    else:
        emb = model.propagate_embeddings(adj)
        loss = bpr_shared_negatives_loss(emb, model.embedding.weight, users, pos_nodes, row, neg_nodes,
                                         cfg.l2_lambda, hardest=cfg.hard_negatives)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def train_bpr(model: LightGCN, adj, train_edges: Tensor, val_edges: Tensor | None = None,
              config: TrainConfig | None = None, progress: bool | None = None,
              callback: Callable[[int, TrainResult], bool | None] | None = None) -> TrainResult:
    """Train ``model`` in place; return the :class:`TrainResult` (the model ends with the best weights).

    ``adj``: the training graph (normalized sparse ``Ã``, ``SparseTensor`` or ``edge_index``)
    on the model's device. ``train_edges`` / ``val_edges``: interactions ``(2, E)``
    (movie indices not offset). Without ``val_edges`` it trains ``config.epochs`` epochs.
    ``callback(epoch, result)``, if given, runs after every epoch (with the model in its
    current state) and may return True to stop; its time is not counted in ``result.seconds``.
    """
    cfg = config or TrainConfig()
    device = model.embedding.weight.device
    train_edges = train_edges.to(device)
    sampler = BPRSampler(train_edges, model.num_users, model.num_items, seed=cfg.seed)
    mixing = torch.Generator(device=device).manual_seed(cfg.seed + 1) if cfg.mix_negatives else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    result = TrainResult(cfg)
    best_state, bad_evals = None, 0
    show = (not quiet_progress()) if progress is None else progress
    start, outside = time.perf_counter(), 0.0  # outside: time spent in the callback
    off = model.num_users  # movie nodes come after the users
    bar = tqdm(range(1, cfg.epochs + 1), desc="epochs", disable=not show, leave=False)
    for epoch in bar:
        model.train()
        total, n = 0.0, 0
        if cfg.shared_negatives:
            batches = sampler.epoch_shared(cfg.batch_size, cfg.num_negatives)
        else:  # one row of negatives per pair: the shared loss with row[b] = b
            batches = ((u, p, torch.arange(u.numel(), device=device), ng.view(u.numel(), -1))
                       for u, p, ng in sampler.epoch(cfg.batch_size, cfg.num_negatives))
        for users, pos, row, neg in batches:
            total += bpr_step(model, adj, opt, cfg, users, pos + off, row, neg + off, mixing) * users.numel()
            n += users.numel()
        sched.step()
        result.epochs.append(epoch)
        result.loss.append(total / n)
        if val_edges is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            t_eval = time.perf_counter()
            metric = evaluate_model(model, adj, val_edges, [train_edges], cfg.k)[f"recall@{cfg.k}"]
            result.eval_seconds += time.perf_counter() - t_eval
            result.eval_epochs.append(epoch)
            result.val_metric.append(metric)
            bar.set_postfix(loss=f"{total / n:.4f}", val=f"{metric:.4f}")
            if metric > result.best_val:
                result.best_val, result.best_epoch, bad_evals = metric, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_evals += 1
                if bad_evals >= cfg.patience:
                    break
        if callback is not None:
            t_cb = time.perf_counter()
            result.seconds = t_cb - start - outside
            stop = callback(epoch, result)
            outside += time.perf_counter() - t_cb
            if stop:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = result.epochs[-1] if result.epochs else 0
    result.seconds = time.perf_counter() - start - outside
    return result


@torch.no_grad()
def evaluate_model(model: LightGCN, adj, eval_edges: Tensor, exclude: list[Tensor], k=20, ks=None) -> dict:
    """Metrics of ``model`` from its final embeddings propagated over ``adj`` (the training graph)."""
    was_training = model.training
    model.eval()
    users, items = model(adj)
    model.train(was_training)
    return evaluate_embeddings(users, items, eval_edges, exclude, ks or (k,))


# Fields added to TrainConfig after checkpoints were saved, with the value that trains as before they
# existed: at that value they stay out of the key, so those checkpoints remain valid (whatever the default).
_ADDED_LATER = {"mix_negatives": False}


def _fingerprint(model: LightGCN, train_edges: Tensor, val_edges: Tensor | None, cfg: TrainConfig) -> str:
    """Everything that decides the trained weights: the initial weights, the model's shape,
    the training and validation edges, the configuration and the package version."""
    from . import __version__

    h = hashlib.sha256()
    for t in (model.embedding.weight.detach(), model.alpha, train_edges,
              val_edges if val_edges is not None else torch.empty(0)):
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    config = asdict(cfg)
    for later, as_before in _ADDED_LATER.items():
        if config[later] == as_before:
            del config[later]
    meta = {"class": type(model).__name__, "users": model.num_users, "items": model.num_items,
            "layers": model.num_layers, "config": config, "version": __version__}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()[:20]


def train_cached(model: LightGCN, adj, train_edges: Tensor, val_edges: Tensor | None = None,
                 config: TrainConfig | None = None, progress: bool | None = None,
                 cache_dir: Path | str | None = None, name: str = "lightgcn") -> TrainResult:
    """:func:`train_bpr`, remembered: the trained weights and history are saved in
    ``<cache_dir>/checkpoints/`` (default: the data cache folder, see
    :func:`lightgcn_helpers.data.default_data_dir`) under a key of everything that decides
    them — the model's *initial* weights (hence the seed), its shape, the training and
    validation edges, the configuration. A later call with the same inputs, from any
    notebook, loads them in a fraction of a second (``result.from_cache`` is True) instead
    of training again; any change trains afresh. Set ``LIGHTGCN_NO_CACHE=1`` to always train.
    ``adj`` must be the training graph of ``train_edges`` (it is not part of the key)."""
    from .data import default_data_dir

    cfg = config or TrainConfig()
    folder = Path(cache_dir) if cache_dir is not None else default_data_dir() / "checkpoints"
    path = folder / f"{name}-{_fingerprint(model, train_edges, val_edges, cfg)}.pt"
    use_cache = os.environ.get("LIGHTGCN_NO_CACHE", "").strip().lower() not in ("1", "true", "yes", "on")
    if use_cache and path.is_file():
        try:
            saved = torch.load(path, map_location=model.embedding.weight.device, weights_only=True)
            model.load_state_dict(saved["state"])
            result = TrainResult.from_dict(json.loads(saved["result"]))
            result.from_cache = True
            return result
        except Exception:  # a damaged or outdated file: train again and overwrite it
            path.unlink(missing_ok=True)
    result = train_bpr(model, adj, train_edges, val_edges, cfg, progress)
    if use_cache:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"state": state, "result": json.dumps(result.as_dict())}, tmp)
        os.replace(tmp, path)  # never a half-written checkpoint
    return result
