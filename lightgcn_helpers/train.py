"""BPR training with validation, early stopping and best-weight restore: one loop for every kind.

Each step of :func:`train_bpr` propagates E⁰ over the *training* graph only (the dominant cost),
looks up the final embeddings of a batch of (user, liked item) pairs and of ``num_negatives``
not-liked items drawn per distinct user of the batch (shared by that user's pairs), and
minimises the BPR loss of each pair against the ``hard_negatives`` of those candidates the model
currently scores highest (dynamic negative sampling), plus λ·L2 of the layer-0 embeddings, with
Adam, the learning rate decaying by ``lr_decay`` per epoch. Every ``eval_every`` epochs the
validation Recall@K is computed from the final propagated embeddings, training items masked;
the best weights are kept.

:func:`fit` is the loop itself — epochs, evaluation, early stopping, restoring the best weights,
callbacks, timing, the progress bar — shared with mini-batch training
(:func:`lightgcn_helpers.minibatch.train_minibatch`), which only brings its own epoch.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
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

__all__ = ["TrainConfig", "TrainResult", "RECIPES", "bpr_step", "train_bpr", "fit",
           "evaluate_model", "train_cached"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_bpr` (tuned on the validation split only).
    Derived in notebook 05, §3 (the paper's recipe) and §4 (what the series adds)."""

    epochs: int = 250
    batch_size: int = 8192
    lr: float = 0.03
    l2_lambda: float = 2e-3  # λ of the layer-0 L2 term of the BPR objective (not weight decay)
    num_negatives: int = 32  # candidate negatives per user and batch, shared by its positives
    hard_negatives: int | None = 8  # each positive trains against its m hardest (None: all)
    lr_decay: float = 0.985  # learning rate multiplied by this after every epoch (1.0: constant)
    eval_every: int = 5
    patience: int = 8  # evaluations without improvement before stopping
    k: int = 20
    seed: int = 0
    shared_negatives: bool = True  # False: every (user, liked item) pair draws its own (the paper)
    synthetic_negatives: int | None = None  # MixGCF: this many synthesised negatives per pair

    def __post_init__(self):
        if self.batch_size < 1 or self.epochs < 0:
            raise ValueError(f"batch_size must be >= 1 and epochs >= 0, got {self.batch_size}, "
                             f"{self.epochs}")
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be at least 1, got {self.num_negatives}")
        for name in ("hard_negatives", "synthetic_negatives"):
            m = getattr(self, name)
            if m is not None and not 1 <= m <= self.num_negatives:
                raise ValueError(f"{name}={m} must be between 1 and num_negatives="
                                 f"{self.num_negatives}; lower it, or set {name}=None")
        if self.synthetic_negatives is not None and self.hard_negatives is not None:
            raise ValueError("synthetic_negatives (MixGCF) picks its own hardest candidates, layer "
                             "by layer: set hard_negatives=None with it")

    @classmethod
    def from_dict(cls, config: dict) -> TrainConfig:
        """A configuration from ``asdict`` output — also from records and checkpoints saved
        before ``synthetic_negatives`` existed (``mix_negatives=True`` with ``hard_negatives``
        the number of synthesised negatives)."""
        config = dict(config)
        if config.pop("mix_negatives", False):
            config["synthetic_negatives"], config["hard_negatives"] = config["hard_negatives"], None
        return cls(**config)

    def key(self) -> dict:
        """The fields that decide a trained model, named as when checkpoints were first saved:
        ``synthetic_negatives=s`` as ``hard_negatives=s, mix_negatives=True``, and left out
        when ``None`` — so that checkpoints saved under the old fields keep their keys."""
        config = asdict(self)
        synthetic = config.pop("synthetic_negatives")
        if synthetic is not None:
            config["hard_negatives"], config["mix_negatives"] = synthetic, True
        return config


RECIPES: dict[str, TrainConfig] = {  # the tuning behind each: benchmarks/README.md
    # He et al. (SIGIR 2020): one uniform negative per pair, Adam 1e-3, batch 2,048, ~1,000 epochs
    "paper": TrainConfig(epochs=1000, batch_size=2048, lr=1e-3, l2_lambda=1e-4, num_negatives=1,
                         hard_negatives=None, lr_decay=1.0, shared_negatives=False),
    # the series' recipe, tuned on MovieLens' validation split (notebook 05): the defaults
    "series": TrainConfig(),
    # MF-BPR (0 layers), its lr and lambda tuned on validation (records/movielens_tuning.json)
    "mf-movielens": TrainConfig(lr=0.1, l2_lambda=0.02),
    # tuned for Gowalla on a share of train.txt (records/gowalla-series.json)
    "series-gowalla": TrainConfig(epochs=150, batch_size=65536, lr=0.03, l2_lambda=1e-3,
                                  num_negatives=32, hard_negatives=8, lr_decay=0.99, eval_every=10),
    # the hardest 8 of 64 candidates, kept for comparison (records/gowalla-series-64.json)
    "series-gowalla-64": TrainConfig(epochs=300, batch_size=65536, lr=0.03, l2_lambda=1e-3,
                                     num_negatives=64, hard_negatives=8, lr_decay=0.995,
                                     eval_every=10),
    # candidates drawn per pair, not per user (records/gowalla-series-pairs.json)
    "series-gowalla-pairs": TrainConfig(epochs=150, batch_size=65536, lr=0.03, l2_lambda=1e-3,
                                        num_negatives=32, hard_negatives=8, lr_decay=0.99,
                                        eval_every=10, shared_negatives=False),
    # MixGCF: one negative synthesised from 64 candidates (records/gowalla-series-mix.json)
    "series-gowalla-mix": TrainConfig(epochs=150, batch_size=65536, lr=0.03, l2_lambda=3e-3,
                                      num_negatives=64, hard_negatives=None, lr_decay=0.99,
                                      eval_every=10, synthetic_negatives=1),
}


@dataclass
class TrainResult:
    """History of a run: per-epoch loss and per-evaluation validation metric. Derived in
    notebook 05, §3."""

    config: TrainConfig
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_epochs: list[int] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = float("-inf")
    seconds: float = 0.0  # training and validation; callbacks excluded
    eval_seconds: float = 0.0  # of `seconds`, the time spent on validation
    from_cache: bool = False  # True when train_cached loaded these weights instead of training

    def as_dict(self) -> dict:
        d = asdict(self)
        d["config"] = asdict(self.config)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainResult:
        d = dict(d)
        return cls(config=TrainConfig.from_dict(d.pop("config")), **d)


def bpr_step(model, adj, opt, cfg: TrainConfig, users, pos_nodes, row, neg_nodes,
             generator: torch.Generator | None = None) -> float:
    """One optimisation step of :func:`train_bpr`: propagate the whole training graph, the BPR
    loss of the batch (negatives shared per user, the ``cfg.hard_negatives`` hardest trained, or
    ``cfg.synthetic_negatives`` synthesised ones, whose mixing weights come from ``generator``),
    backward, optimiser. Items are *node* ids (offset by the number of users). Returns the
    batch's mean loss. Derived in notebook 05, §1."""
    if cfg.synthetic_negatives is not None:
        loss = mixed_negatives_loss(model.layer_embeddings(adj), model.alpha, users, pos_nodes,
                                    row, neg_nodes, cfg.l2_lambda,
                                    synthetic=cfg.synthetic_negatives, generator=generator)
    else:
        emb = model.propagate_embeddings(adj)
        loss = bpr_shared_negatives_loss(emb, model.embedding.weight, users, pos_nodes, row,
                                         neg_nodes, cfg.l2_lambda, hardest=cfg.hard_negatives)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def _batches(sampler: BPRSampler, cfg: TrainConfig) -> Iterator[tuple[Tensor, ...]]:
    """One epoch of ``(users, pos, row, neg)``: negatives shared per user, or one row per pair
    (the shared loss with ``row[b] = b``)."""
    if cfg.shared_negatives:
        yield from sampler.epoch_shared(cfg.batch_size, cfg.num_negatives)
        return
    for users, pos, neg in sampler.epoch(cfg.batch_size, cfg.num_negatives):
        row = torch.arange(users.numel(), device=users.device)
        yield users, pos, row, neg.view(users.numel(), -1)


def train_bpr(model: LightGCN, adj, train_edges: Tensor, val_edges: Tensor | None = None,
              config: TrainConfig | None = None, progress: bool | None = None,
              callback: Callable[[int, TrainResult], bool | None] | None = None) -> TrainResult:
    """Train ``model`` in place; return the :class:`TrainResult` (the model ends with the best
    weights). Derived in notebook 05, §3.

    ``adj``: the training graph (normalized sparse ``Ã``, ``SparseTensor`` or ``edge_index``) on
    the model's device. ``train_edges`` / ``val_edges``: interactions ``(2, E)`` (items not
    offset). Without ``val_edges`` it trains ``config.epochs`` epochs. ``callback(epoch,
    result)`` runs after every epoch (see :func:`fit`) and may return True to stop.
    """
    cfg = config or TrainConfig()
    device = model.embedding.weight.device
    train_edges = train_edges.to(device)
    sampler = BPRSampler(train_edges, model.num_users, model.num_items, seed=cfg.seed)
    mixing = None
    if cfg.synthetic_negatives is not None:
        mixing = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    offset = model.num_users  # item nodes come after the users

    def run_epoch(tick: Callable[[], None], training_seconds: Callable[[], float]):
        total, pairs = 0.0, 0
        for users, pos, row, neg in _batches(sampler, cfg):
            loss = bpr_step(model, adj, opt, cfg, users, pos + offset, row, neg + offset, mixing)
            total += loss * users.numel()
            pairs += users.numel()
            tick()
        sched.step()
        return total / pairs, False

    def validate() -> float:
        return evaluate_model(model, adj, val_edges, [train_edges], cfg.k)[f"recall@{cfg.k}"]

    return fit(model, cfg, TrainResult(cfg), run_epoch, validate if val_edges is not None else None,
               progress, callback, sampler.batches_per_epoch(cfg.batch_size))


class _Clock:
    """Seconds since the start, without the callbacks' time; ``training()`` also without the
    validations'."""

    def __init__(self):
        self.start, self.outside, self.validating = time.perf_counter(), 0.0, 0.0

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.outside

    def training(self) -> float:
        return self.seconds() - self.validating


class _EarlyStopping:
    """The best validation so far, its weights, and the validations since (``patience``)."""

    def __init__(self, patience: int):
        self.patience, self.state, self.bad = patience, None, 0

    def update(self, model, result: TrainResult, epoch: int, metric: float) -> bool:
        """Record a validation; True when ``patience`` validations in a row brought no gain."""
        result.eval_epochs.append(epoch)
        result.val_metric.append(metric)
        if metric > result.best_val:
            result.best_val, result.best_epoch, self.bad = metric, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, model, result: TrainResult) -> None:
        """The best weights back into ``model`` (without validation: the last epoch's stay)."""
        if self.state is not None:
            model.load_state_dict(self.state)
        else:
            result.best_epoch = result.epochs[-1] if result.epochs else 0


def fit(model, cfg: TrainConfig, result: TrainResult, run_epoch, validate=None,
        progress: bool | None = None, callback=None, steps_per_epoch: int = 1,
        agree: Callable[[bool], bool] = bool) -> TrainResult:
    """The loop of :func:`train_bpr` and of mini-batch training: epochs, validation, early
    stopping, best weights restored, callbacks, timing, progress bar. Derived in notebook 05, §3.

    ``run_epoch(tick, training_seconds)`` trains an epoch (``tick()`` after each of its
    ``steps_per_epoch`` steps) and returns ``(mean loss or None, stop)``: ``stop`` (a time budget
    reached) ends training after this epoch's validation. ``validate()`` (higher is better) runs
    every ``cfg.eval_every`` epochs, at the last and when stopping; ``cfg.patience`` validations
    without a gain stop training. ``callback(epoch, result)`` runs after every epoch (not timed)
    and may return True to stop; ``agree(flag)``: one decision for several processes."""
    clock, early = _Clock(), _EarlyStopping(cfg.patience)
    show = (not quiet_progress()) if progress is None else progress
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="steps", disable=not show, leave=False)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        loss, stop = run_epoch(lambda: bar.update(1), clock.training)
        if loss is not None:
            result.epochs.append(epoch)
            result.loss.append(loss)
        if validate is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs or stop):
            started = time.perf_counter()
            metric = validate()
            clock.validating += time.perf_counter() - started
            result.eval_seconds = clock.validating
            stop = early.update(model, result, epoch, metric) or stop
        bar.set_postfix(loss=result.loss[-1] if result.loss else None, val=result.best_val)
        if callback is not None:
            started, result.seconds = time.perf_counter(), clock.seconds()
            stop = agree(bool(callback(epoch, result))) or stop
            clock.outside += time.perf_counter() - started
        if stop:
            break
    bar.close()
    early.restore(model, result)
    result.seconds = clock.seconds()
    return result


@torch.no_grad()
def evaluate_model(model: LightGCN, adj, eval_edges: Tensor, exclude: list[Tensor], k=20,
                   ks=None) -> dict:
    """Metrics of ``model`` from its final embeddings propagated over ``adj`` (the training
    graph). Derived in notebook 06, §3."""
    was_training = model.training
    model.eval()
    users, items = model(adj)
    model.train(was_training)
    return evaluate_embeddings(users, items, eval_edges, exclude, ks or (k,))


def _fingerprint(model: LightGCN, train_edges: Tensor, val_edges: Tensor | None,
                 cfg: TrainConfig) -> str:
    """Everything that decides the trained weights: the initial weights, the model's shape,
    the training and validation edges, the configuration (:meth:`TrainConfig.key`) and the
    package version."""
    from . import __version__

    h = hashlib.sha256()
    for t in (model.embedding.weight.detach(), model.alpha, train_edges,
              val_edges if val_edges is not None else torch.empty(0)):
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    meta = {"class": type(model).__name__, "users": model.num_users, "items": model.num_items,
            "layers": model.num_layers, "config": cfg.key(), "version": __version__}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()[:20]


def train_cached(model: LightGCN, adj, train_edges: Tensor, val_edges: Tensor | None = None,
                 config: TrainConfig | None = None, progress: bool | None = None,
                 cache_dir: Path | str | None = None, name: str = "lightgcn") -> TrainResult:
    """:func:`train_bpr`, remembered. Derived in notebook 05, §5.

    The trained weights and history are saved in ``<cache_dir>/checkpoints/`` (default: the data
    cache folder, :func:`lightgcn_helpers.data.default_data_dir`) under a key of everything that
    decides them — the model's *initial* weights (hence the seed), its shape, the training and
    validation edges, the configuration. A later call with the same inputs, from any notebook,
    loads them in a fraction of a second (``result.from_cache`` is True); any change trains
    afresh. ``LIGHTGCN_NO_CACHE=1`` always trains. ``adj`` must be the training graph of
    ``train_edges`` (it is not part of the key)."""
    from .data import default_data_dir

    cfg = config or TrainConfig()
    folder = Path(cache_dir) if cache_dir is not None else default_data_dir() / "checkpoints"
    path = folder / f"{name}-{_fingerprint(model, train_edges, val_edges, cfg)}.pt"
    no_cache = os.environ.get("LIGHTGCN_NO_CACHE", "").strip().lower()
    use_cache = no_cache not in ("1", "true", "yes", "on")
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
