"""How does the cost of LightGCN grow with the graph? Epoch time, evaluation time and peak
memory against the number of training interactions.

    python benchmarks/scaling.py                        # CPU: Gowalla subsamples + synthetic graphs
    python benchmarks/scaling.py --record               # ... and copy it to benchmarks/records/
    python benchmarks/scaling.py --sizes 0.1M,1M,10M --no-gowalla
    python benchmarks/scaling.py --device cuda          # the same code on a GPU
    python benchmarks/scaling.py --tiny                 # small synthetic graphs, seconds (smoke)

Graphs (the x axis is always the number of *training* interactions):

* **Gowalla subsamples**: the LightGCN paper's Gowalla split (810,128 training interactions)
  with ``--gowalla-fracs`` (10 %, 25 %, 50 %, 100 %) of its training interactions kept,
  uniformly at random (seed 0). Users and items without a kept training interaction are
  dropped (ids compacted), and the test split is restricted to the pairs whose user and item
  are both still present, so each subsample is a smaller graph of the same kind, evaluated
  like the full one (all its test users).
* **Synthetic power-law bipartite graphs** (``--sizes``, default 0.1M … 10M and beyond, see
  below): Chung–Lu sampling — every interaction draws its user with probability ∝ a user
  weight and its item with probability ∝ an item weight, duplicates are dropped and topped
  up — with weights from a truncated Pareto (power-law) distribution whose exponents are
  the maximum-likelihood tail exponents of Gowalla's training degrees (degree ≥ 20:
  γ_user ≈ 2.45, γ_item ≈ 2.58; the full run re-fits them and records the fit next to the
  constants). The mean degrees are Gowalla's (34.4 interactions per user, 25.1 per item,
  train + test), so users and items grow in proportion to the interactions; the minimum
  weight is Gowalla's minimum degree (8 per user, 7 per item: the paper's 10-core filter)
  and the maximum the same share of the other side as Gowalla's largest degree. A random
  21 % of the pairs (Gowalla's test share) is the test split.

Every graph runs in a fresh child process (so its peak memory is its own), with
``OMP_WAIT_POLICY=PASSIVE`` unless set otherwise (PyTorch's spinning OpenMP threads inflate
times several-fold on a busy machine), and measures:

* **training**: the series' Gowalla settings (``lightgcn_helpers.train.RECIPES['series-gowalla']``,
  read once by the parent and passed to every child: batch 65,536, 32 negatives shared per
  user, the 8 hardest trained, Adam). Every step propagates the *whole* graph, so a step
  costs O(E) and an epoch (E / batch steps) O(E²). A first
  step (which also checks once that Ã is symmetric) and ``--steps`` more are timed with the
  same calls as ``train_bpr``'s loop; the epoch is **extrapolated** as first step +
  (steps − 1) × mean step. When that estimate is below ``--max-epoch-seconds``, one real
  epoch of ``lightgcn_helpers.train.train_bpr(epochs=1)`` is also run and is the **measured**
  epoch (both are kept: they check the extrapolation);
* **evaluation**: ``lightgcn_helpers.train.evaluate_model`` (full ranking of all items,
  Recall/NDCG@20, training items masked) for all test users when users × items ≤
  ``--full-eval-max``; above it, for a fixed random sample of ``--eval-users`` test users,
  extrapolated linearly in the number of users: propagation (timed alone) + (sample time −
  propagation) × users / sampled users. Where the full evaluation runs the sampled
  extrapolation is computed too, as a check;
* **memory**: the resident set size (``VmRSS``) above the child's own baseline right after
  its imports (what an empty child holds; reported as ``empty_child_mb``), and its peak
  (``VmHWM``, reset through ``/proc/self/clear_refs`` between phases): graph construction,
  training, evaluation. On a GPU, ``torch.cuda.max_memory_allocated`` per phase as well.

Before each synthetic graph beyond those measured, its peak memory is predicted from a
linear fit of the measured ones; a graph predicted above ``--mem-budget-gb`` is skipped,
and a watchdog kills a child whose memory grows past the budget (+10 %) or leaves the
machine under 1.5 GB available. Writes ``scaling.json`` (every measurement, the machine, the
load, the command), ``scaling.md`` and ``scaling.png`` (log-log, with least-squares slopes)
to ``--out`` (default ``benchmarks/results/``, git-ignored); ``--record`` copies them to
``benchmarks/records/``. Timings are never asserted by the tests.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from lightgcn_helpers.env import (  # noqa: E402
    load_average,
    machine_info,
    pick_device,
    quiet_progress,
    seed_everything,
)
from lightgcn_helpers.train import RECIPES, TrainConfig  # noqa: E402

from gowalla_speed import _usage  # noqa: E402  (CPU time and page faults of this process)
from run_benchmarks import LOAD_LIMIT, _reset_peak_rss, _status_kb  # noqa: E402

DIM, LAYERS, K = 64, 3, 20
GOWALLA = {"train": 810_128, "test": 217_242, "users": 29_858, "items": 40_981,
           "max_user_degree": 811, "max_item_degree": 1_415}
# Synthetic graphs: power-law exponents = MLE tail exponents (degree >= 20) of Gowalla's training
# degrees
GAMMA_USER, GAMMA_ITEM, TAIL_KMIN = 2.45, 2.58, 20
# Gowalla's smallest degrees (the paper's 10-core filter, before its split)
KMIN_USER, KMIN_ITEM = 8.0, 7.0
TEST_SHARE = GOWALLA["test"] / (GOWALLA["train"] + GOWALLA["test"])  # 0.211
USER_DEGREE = (GOWALLA["train"] + GOWALLA["test"]) / GOWALLA["users"]  # 34.4 interactions per user
ITEM_DEGREE = (GOWALLA["train"] + GOWALLA["test"]) / GOWALLA["items"]  # 25.1 per item
# those predicted above the memory budget are skipped
DEFAULT_SIZES = "0.1M,0.3M,1M,3M,10M,20M,30M,50M,70M"
TINY_SIZES = "3k,10k,30k"
SWAP_SAFETY_GB = 1.5  # the watchdog kills a child when the machine has less available than this
# a graph runs only when its predicted peak leaves this much of what is available now
MARGIN_GB = 3.0


# --- graphs ---------------------------------------------------------------------------

def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:], 1)
    try:
        return int(round(float(text[:-1] if mult != 1 else text) * mult))
    except ValueError:
        raise SystemExit(f"cannot read the size {text!r}: use e.g. 100000, 300k, 1.5M") from None


def human(n: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.0f}"


def truncated_pareto(n: int, gamma: float, kmin: float, kmax: float,
                     gen: torch.Generator) -> torch.Tensor:
    """``n`` weights with density ∝ w^-gamma on [kmin, kmax] (inverse CDF, float64)."""
    a = gamma - 1.0
    lo, hi = kmin ** -a, max(kmax, kmin * 1.0001) ** -a
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    return (lo - u * (lo - hi)) ** (-1.0 / a)


def synthetic_interactions(train: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int,
                                                               int]:
    """A power-law bipartite graph with ``train`` training interactions (see the module
    docstring): ``(train_edges (2, train), test_edges (2, ~0.27·train), users, items)``,
    ids compacted to the nodes with a training interaction, test pairs of other nodes dropped.
    Vectorized: inverse-CDF sampling by ``searchsorted`` and ``unique`` over pair keys."""
    gen = torch.Generator().manual_seed(seed)
    total = int(round(train / (1 - TEST_SHARE)))
    n_users, n_items = max(2, round(total / USER_DEGREE)), max(2, round(total / ITEM_DEGREE))
    if total > 0.5 * n_users * n_items:
        raise ValueError(f"{train} interactions are too many for a sparse graph of {n_users} x "
                         f"{n_items}")
    w_user = truncated_pareto(n_users, GAMMA_USER, KMIN_USER,
                              GOWALLA["max_user_degree"] / GOWALLA["items"] * n_items, gen)
    w_item = truncated_pareto(n_items, GAMMA_ITEM, KMIN_ITEM,
                              GOWALLA["max_item_degree"] / GOWALLA["users"] * n_users, gen)
    cdf_user, cdf_item = torch.cumsum(w_user, 0), torch.cumsum(w_item, 0)
    cdf_user /= cdf_user[-1].item()
    cdf_item /= cdf_item[-1].item()
    del w_user, w_item
    keys = torch.empty(0, dtype=torch.long)
    while keys.numel() < total:  # a few rounds: the first draws ~10 % extra for the duplicates
        m = int((total - keys.numel()) * 1.1) + 100
        u = torch.searchsorted(cdf_user,
                               torch.rand(m, generator=gen,
                                          dtype=torch.float64)).clamp_(max=n_users - 1)
        i = torch.searchsorted(cdf_item,
                               torch.rand(m, generator=gen,
                                          dtype=torch.float64)).clamp_(max=n_items - 1)
        u.mul_(n_items).add_(i)
        del i
        keys = torch.unique(torch.cat([keys, u]))
        del u
    # random order; first `train` = training
    keys = keys[torch.randperm(keys.numel(), generator=gen)[:total]]
    users, items = keys // n_items, keys % n_items
    del keys
    return compact(torch.stack([users[:train], items[:train]]),
                   torch.stack([users[train:], items[train:]]),
                   n_users, n_items)


def compact(train: torch.Tensor, test: torch.Tensor, n_users: int, n_items: int):
    """Drop users/items without a training interaction (ids renumbered 0..n-1, order kept)
    and the test pairs that refer to them."""
    keep_u = torch.zeros(n_users, dtype=torch.bool)
    keep_i = torch.zeros(n_items, dtype=torch.bool)
    keep_u[train[0]] = True
    keep_i[train[1]] = True
    new_u = torch.cumsum(keep_u, 0) - 1
    new_i = torch.cumsum(keep_i, 0) - 1
    test = test[:, keep_u[test[0]] & keep_i[test[1]]]
    remap = lambda e: torch.stack([new_u[e[0]], new_i[e[1]]])  # noqa: E731
    return remap(train), remap(test), int(keep_u.sum()), int(keep_i.sum())


def gowalla_subsample(frac: float, seed: int = 0):
    """Gowalla's training interactions, ``frac`` of them kept uniformly (see the module
    docstring)."""
    from lightgcn_helpers.datasets import load_dataset
    from lightgcn_helpers.graph import ColdStartWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        g = load_dataset("gowalla").graph()
    train, test = g.split.train, g.split.test
    if frac < 1:
        n = int(round(frac * train.shape[1]))
        idx = torch.randperm(train.shape[1],
                             generator=torch.Generator().manual_seed(seed))[:n].sort().values
        train = train[:, idx]
    return compact(train, test, g.num_users, g.num_items)


def fit_gowalla_power_law() -> dict:
    """Maximum-likelihood tail exponents (discrete approximation, degree >= TAIL_KMIN) of
    Gowalla's training degrees — the source of GAMMA_USER / GAMMA_ITEM — and its degree
    percentiles next to those of a synthetic graph of the same size."""
    train, _, nu, ni = gowalla_subsample(1.0)
    syn, _, su, si = synthetic_interactions(GOWALLA["train"], seed=0)
    out = {"kmin_tail": TAIL_KMIN,
           "constants": {"gamma_user": GAMMA_USER, "gamma_item": GAMMA_ITEM}}
    q = [1, 10, 25, 50, 75, 90, 99, 99.9]
    for side, row, n, srow, sn in (("user", train[0], nu, syn[0], su),
                                   ("item", train[1], ni, syn[1], si)):
        deg = torch.bincount(row, minlength=n).double().numpy()
        tail = deg[deg >= TAIL_KMIN]
        fit = 1 + tail.size / np.log(tail / (TAIL_KMIN - 0.5)).sum()
        out[f"gamma_{side}_fit"] = round(float(fit), 3)
        sdeg = torch.bincount(srow, minlength=sn).double().numpy()
        out[f"{side}_degree_percentiles"] = {"q": q,
                                             "gowalla": np.percentile(deg, q).round(1).tolist(),
                                             "synthetic": np.percentile(sdeg, q).round(1).tolist()}
        out[f"{side}_count"] = {"gowalla": n, "synthetic": sn}
    return out


def build(spec: dict):
    if spec["source"] == "gowalla":
        return gowalla_subsample(spec["frac"], spec.get("seed", 0))
    return synthetic_interactions(spec["train"], spec.get("seed", 0))


# --- the child: one graph, fresh process ----------------------------------------------

def _mb(kb: int | None) -> float | None:
    return None if kb is None else kb * 1024 / 1e6  # MB = 10^6 bytes


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class TensorBytes:
    """Peak bytes of the tensors created while active — what a GPU's caching allocator would
    report as ``max_memory_allocated`` above the tensors that existed before — measured on the
    CPU: a ``TorchDispatchMode`` sees the outputs of every operator (backward included) and
    counts each new storage until it is freed (weak references, checked after every operator).
    Kernel-internal scratch buffers are not seen. Slow-ish (Python per operator): used for one
    step, untimed."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        outer = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                outer._seen(out)
                return out

        self.mode, self.live, self.current, self.peak = Mode(), {}, 0, 0

    def _seen(self, out):
        from torch.multiprocessing.reductions import StorageWeakRef
        from torch.utils._pytree import tree_leaves

        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                ref = StorageWeakRef(t.untyped_storage())
                if ref.cdata not in self.live:
                    n = t.untyped_storage().nbytes()
                    self.live[ref.cdata], self.current = (ref, n), self.current + n
        self.peak = max(self.peak, self.current)

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def _storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (sparse CSR: its three parts)."""
    seen, total = set(), 0
    for t in tensors:
        parts = (t.crow_indices(), t.col_indices(),
                 t.values()) if t.layout == torch.sparse_csr else (t,)
        for p in parts:
            st = p.untyped_storage()
            if st.data_ptr() not in seen:
                seen.add(st.data_ptr())
                total += st.nbytes()
    return total


def child(spec: dict) -> dict:
    """Build one graph and measure it (see the module docstring); returns a JSON-able dict."""
    from lightgcn_helpers.graph import normalized_adjacency
    from lightgcn_helpers.model import LightGCN
    from lightgcn_helpers.sampling import BPRSampler
    from lightgcn_helpers.train import bpr_step, evaluate_model, train_bpr

    gc.collect()
    base_kb = _status_kb("VmRSS")
    out = {"spec": spec, "empty_child_mb": _mb(base_kb),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "threads": torch.get_num_threads()}
    device = pick_device(spec.get("device"))
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    above = lambda kb: None if kb is None or base_kb is None else max(kb - base_kb, 0) * 1024 / 1e6  # noqa: E731
    cfg = TrainConfig(**spec["config"])  # the parent's recipe, the same for every graph
    out["config"] = asdict(cfg)
    seed_everything(0)

    # graph construction (CPU), adjacency, model
    t0 = time.perf_counter()
    train, test, nu, ni = build(spec)
    out["build_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    adj = normalized_adjacency(train, nu, ni, "csr")
    out["adjacency_seconds"] = time.perf_counter() - t0
    train, test, adj = train.to(device), test.to(device), adj.to(device)
    model = LightGCN(nu, ni, DIM, LAYERS).to(device)
    gc.collect()
    eval_users = torch.unique(test[0])
    out.update({"users": nu, "items": ni, "nodes": nu + ni, "train_interactions": train.shape[1],
                "test_interactions": test.shape[1], "eval_users": eval_users.numel(),
                "nnz": adj.values().numel(),
                "bytes": {"embedding": _nbytes(model.embedding.weight),
                          "adjacency": _nbytes(adj.crow_indices(), adj.col_indices(), adj.values()),
                          "train_edges": _nbytes(train), "test_edges": _nbytes(test)},
                "setup_peak_mb": above(_status_kb("VmHWM")),
                "data_rss_mb": above(_status_kb("VmRSS"))})

    def phase_start():
        gc.collect()
        if cuda:
            sync()
            torch.cuda.reset_peak_memory_stats(device)
        return _reset_peak_rss()

    def phase_end(name: str, reset_ok: bool):
        sync()
        out[f"{name}_peak_mb"] = above(_status_kb("VmHWM")) if reset_ok else None
        if cuda:
            out[f"{name}_peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 1e6

    # training: a first step and `steps` more, the calls of train_bpr's loop
    ok = phase_start()
    sampler = BPRSampler(train, nu, ni, seed=cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    off = nu

    def step(batches):
        """One step of train_bpr's loop (lightgcn_helpers.train), the same calls."""
        users, pos, row, neg = next(batches)
        bpr_step(model, adj, opt, cfg, users, pos + off, row, neg + off)

    steps_per_epoch = sampler.batches_per_epoch(cfg.batch_size)
    batches = sampler.epoch_shared(cfg.batch_size, cfg.num_negatives)
    times, u0 = [], _usage()
    n_steps = min(spec["steps"] + 1, steps_per_epoch)
    for _ in tqdm(range(n_steps), desc=f"steps {spec['name']}", leave=False,
                  disable=quiet_progress() or not spec.get("progress")):
        t = time.perf_counter()
        step(batches)  # sampling counts, as in train_bpr
        sync()
        times.append(time.perf_counter() - t)
    u1 = _usage()
    del batches
    # one more step (untimed), with every tensor counted: the memory the same step needs on a GPU
    moments = [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]
    resident = _storage_bytes([*model.parameters(), adj, train, test, sampler.keys, *moments])
    gc.collect()
    with TensorBytes() as tally:
        batches = sampler.epoch_shared(cfg.batch_size, cfg.num_negatives)  # its permutation counts
        step(batches)
        del batches
    out["tensor_mb"] = {"resident": resident / 1e6, "train_step_peak": tally.peak / 1e6,
                        "train_total": (resident + tally.peak) / 1e6}
    mean_step = float(np.mean(times[1:])) if len(times) > 1 else times[0]
    out.update({"first_step_seconds": times[0], "step_seconds": mean_step,
                "steps_timed": len(times) - 1,
                "steps_per_epoch": steps_per_epoch,
                "epoch_extrapolated_seconds": times[0] + (steps_per_epoch - 1) * mean_step,
                "steps_cpu_seconds": (u1["user"] - u0["user"]) + (u1["sys"] - u0["sys"])})
    sampler = opt = None  # freed before the next phase (step() is not called again)
    phase_end("train", ok)

    if out["epoch_extrapolated_seconds"] <= spec["max_epoch_seconds"]:
        # a fresh model: its first epoch, symmetry check included
        model = LightGCN(nu, ni, DIM, LAYERS).to(device)
        ok = phase_start()
        t0 = time.perf_counter()
        res = train_bpr(model, adj, train, None, cfg, progress=False)
        sync()
        out["epoch_measured_seconds"] = time.perf_counter() - t0
        out["epoch_train_bpr_seconds"] = res.seconds
        phase_end("epoch", ok)
    out["epoch_seconds"] = out.get("epoch_measured_seconds", out["epoch_extrapolated_seconds"])
    out["epoch_is_extrapolated"] = "epoch_measured_seconds" not in out

    # evaluation
    n_eval, n_items = eval_users.numel(), ni
    full = n_eval * n_items <= spec["full_eval_max"]
    sample_n = min(spec["eval_users"], n_eval)
    pick = eval_users[torch.randperm(n_eval,
                                     generator=torch.Generator().manual_seed(0))[:sample_n].to(device)]
    sub = test[:, torch.isin(test[0], pick)]
    ok = phase_start()
    if full:
        t0 = time.perf_counter()
        m = evaluate_model(model, adj, test, [train], ks=(K,))
        sync()
        out["eval_measured_seconds"] = time.perf_counter() - t0
        out["recall@20"], out["ndcg@20"] = m["recall@20"], m["ndcg@20"]
        phase_end("eval", ok)
    # sampled users, extrapolated (a check where the full one ran)
    if not full or n_eval >= 2 * sample_n:
        with torch.no_grad():
            t0 = time.perf_counter()
            model(adj)
            sync()
            prop = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = evaluate_model(model, adj, sub, [train], ks=(K,))
        sync()
        t_sample = time.perf_counter() - t0
        out.update({"eval_propagation_seconds": prop, "eval_sample_users": sample_n,
                    "eval_sample_seconds": t_sample,
                    "eval_extrapolated_seconds": prop + max(t_sample - prop,
                                                            0.0) * n_eval / sample_n})
        if not full:
            out["recall@20"], out["ndcg@20"] = m["recall@20"], m["ndcg@20"]
            phase_end("eval", ok)
    resident = _storage_bytes([model.embedding.weight, adj, train, test])
    gc.collect()
    with TensorBytes() as tally:  # the sampled users' evaluation, every tensor counted (untimed)
        evaluate_model(model, adj, sub, [train], ks=(K,))
    out["tensor_mb"].update({"eval_resident": resident / 1e6, "eval_sample_peak": tally.peak / 1e6,
                             "eval_total": (resident + tally.peak) / 1e6})
    out["eval_seconds"] = out.get("eval_measured_seconds", out.get("eval_extrapolated_seconds"))
    out["eval_is_extrapolated"] = "eval_measured_seconds" not in out
    peaks = [out.get(k) for k in ("train_peak_mb", "epoch_peak_mb", "eval_peak_mb")]
    out["peak_mb"] = max((p for p in peaks if p is not None), default=None)
    out["peak_process_mb"] = _mb(_status_kb("VmHWM"))
    if cuda:
        out["peak_cuda_mb"] = max(out.get(k, 0.0) for k in ("train_peak_cuda_mb",
                                                            "epoch_peak_cuda_mb",
                                                             "eval_peak_cuda_mb"))
    return out


# --- the parent ---------------------------------------------------------------------------

def _kb_to_gb(kb: int | None) -> float | None:
    return None if kb is None else kb * 1024 / 1e9


def _mem_available_gb() -> float | None:
    return _kb_to_gb(_status_kb("MemAvailable", "/proc/meminfo"))


def _child_rss_gb(pid: int) -> float | None:
    return _kb_to_gb(_status_kb("VmRSS", f"/proc/{pid}/status"))


def run_child(spec: dict, kill_gb: float | None, timeout: float) -> dict:
    """Run :func:`child` in a fresh process, watching its memory: it is killed when its RSS
    exceeds ``kill_gb`` or the machine has under SWAP_SAFETY_GB available."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    import threading

    box: dict = {}
    reader = threading.Thread(target=lambda: box.update(zip(("out", "err"), proc.communicate())),
                              daemon=True)
    reader.start()
    start, peak_seen, killed = time.time(), 0.0, None
    load = [load_average()]
    while reader.is_alive():
        reader.join(0.5)
        rss = _child_rss_gb(proc.pid)
        peak_seen = max(peak_seen, rss or 0.0)
        avail = _mem_available_gb()
        if killed is None and rss is not None:
            if kill_gb is not None and rss > kill_gb:
                killed = f"its memory reached {rss:.1f} GB, above the limit of {kill_gb:.1f} GB"
            elif avail is not None and avail < SWAP_SAFETY_GB:
                killed = f"the machine had only {avail:.1f} GB available (child at {rss:.1f} GB)"
            elif time.time() - start > timeout:
                killed = f"it ran longer than {timeout:.0f} s"
            if killed:
                proc.kill()
        if int(time.time() - start) % 15 == 0:
            load.append(load_average())
    load.append(load_average())
    loads = [x for x in load if x is not None]
    info = {"wall_seconds": time.time() - start, "watchdog_peak_rss_gb": peak_seen,
            "load_max": max(loads,
                            default=None), "load_mean": float(np.mean(loads)) if loads else None}
    if killed:
        return {"spec": spec, "failed": f"killed: {killed}", **info}
    if proc.returncode:
        err = box.get("err", "").strip()
        last = err.splitlines()[-1] if err else ""
        return {"spec": spec, "failed": f"exit code {proc.returncode}: {last}",
                "stderr": err[-3000:], **info}
    try:
        res = json.loads(box["out"].strip().splitlines()[-1])
    except (KeyError, IndexError, json.JSONDecodeError):
        return {"spec": spec, "failed": f"no result line; stderr: {box.get('err', '')[-2000:]}",
                **info}
    return {**res, **info}


def loglog_slope(x, y) -> dict | None:
    """Least-squares fit of log10 y = a + b log10 x; None with fewer than two usable points."""
    pts = [(a, b) for a, b in zip(x, y) if a and b and a > 0 and b > 0]
    if len(pts) < 2:
        return None
    lx, ly = np.log10([p[0] for p in pts]), np.log10([p[1] for p in pts])
    b, a = np.polyfit(lx, ly, 1)
    return {"slope": float(b), "intercept": float(a), "points": len(pts),
            "x_range": [float(min(p[0] for p in pts)), float(max(p[0] for p in pts))]}


def linear_fit(x, y) -> tuple[float, float] | None:
    """Least squares y = a + b x (memory against interactions); None with fewer than two points."""
    pts = [(a, b) for a, b in zip(x, y) if b is not None]
    if len(pts) < 2:
        return None
    b, a = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
    return float(a), float(b)


METRICS = (("epoch_seconds", "epoch (s)"), ("step_seconds", "training step (s)"),
           ("eval_seconds", "evaluation (s)"), ("peak_mb", "peak memory (MB)"))


def measured(rows: list[dict]) -> list[dict]:
    """The rows with measurements (not failed, not skipped)."""
    return [r for r in rows if "failed" not in r and not r.get("skipped")]


def fits(rows: list[dict]) -> dict:
    out = {}
    for series in ("synthetic", "gowalla"):
        pts = [r for r in measured(rows) if r["spec"]["source"] == series]
        x = [r["train_interactions"] for r in pts]
        out[series] = {key: loglog_slope(x, [r.get(key) for r in pts]) for key, _ in METRICS}
    return out


def gpu_estimate(rows: list[dict]) -> dict | None:
    """What the same training needs on a GPU, from the tensors counted on the CPU
    (``tensor_mb``: the resident tensors — embedding table, Adam's two moments, adjacency,
    edges, sampler keys — plus the peak of the tensors one training step creates, gradient
    and activations included), fitted as a + b·E over the synthetic graphs (those ≥ 1M
    interactions when there are two), next to the same fit of the CPU's peak resident memory."""
    syn = [r for r in measured(rows) if r["spec"]["source"] == "synthetic"]
    if len(syn) < 2:
        return None
    big = [r for r in syn if r["train_interactions"] >= 1e6]
    big = big if len(big) >= 2 else syn
    x = [r["train_interactions"] for r in big]
    a, b = linear_fit(x, [tensor_need(r) for r in big])
    ra, rb = linear_fit(x, [r["peak_mb"] for r in big])
    largest = max(syn, key=lambda r: r["train_interactions"])
    by = largest["bytes"]
    ctx_mb = 500.0  # the CUDA context and kernels: on the device, outside max_memory_allocated
    res = {"method": "tensors counted on the CPU (TorchDispatchMode over one training step and one "
                     "evaluation; "
                     "resident tensors by their storage sizes), fitted as a + b·E over synthetic "
                     "graphs; "
                     f"+ {ctx_mb / 1e3:.1f} GB for the CUDA context. An estimate: cuSPARSE "
                     "workspaces and the "
                     "caching allocator's rounding and fragmentation are not counted.",
           "tensor_fit_intercept_mb": a, "tensor_bytes_per_interaction": b * 1e6,
           "cpu_rss_fit_intercept_mb": ra, "cpu_rss_bytes_per_interaction": rb * 1e6,
           "fit_points": x,
           "largest_measured": {
               "train_interactions": largest["train_interactions"], "nodes": largest["nodes"],
               "tensor_mb": largest["tensor_mb"], "cpu_peak_rss_mb": largest["peak_mb"],
               "parts_mb": {"embedding": by["embedding"] / 1e6,
                            "embedding + Adam moments": 3 * by["embedding"] / 1e6,
                            "adjacency (CSR)": by["adjacency"] / 1e6,
                            "train + test edges": (by["train_edges"] + by["test_edges"]) / 1e6},
               "tensor_bytes_per_node": largest["tensor_mb"]["train_total"] * 1e6
               / largest["nodes"],
               "tensor_bytes_per_interaction": largest["tensor_mb"]["train_total"] * 1e6
               / largest["train_interactions"]}}
    res["gpu_gb_needed"] = {human(e): (a + b * e + ctx_mb) / 1e3 for e in (1e6, 1e7, 1e8)}
    res["gpu_max_interactions"] = ({f"{gb} GB": max((gb * 1e3 - ctx_mb - a) / b, 0.0)
                                    for gb in (24, 40, 80, 141)} if b > 0 else None)
    return res


def fmt_s(v) -> str:
    if v is None:
        return "—"
    if v >= 3600:
        return f"{v / 3600:.1f} h"
    if v >= 100:
        return f"{v:,.0f} s"
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"


def fmt_mb(v) -> str:
    if v is None:
        return "—"
    return f"{v / 1e3:.2f} GB" if v >= 1e3 else f"{v:.0f} MB"


def tensor_need(r: dict) -> float:
    """Peak tensor memory of a graph (training step or evaluation, whichever is larger), MB."""
    return max(r["tensor_mb"]["train_total"], r["tensor_mb"]["eval_total"])


def markdown_table(rows: list[dict]) -> str:
    lines = ["| Graph | Training interactions | Users | Items | Step | Epoch | Evaluation | Peak "
             "memory (RSS) "
             "| RSS bytes / interaction | Tensors (GPU estimate) | Load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = r["spec"]["name"]
        if "failed" in r or r.get("skipped"):
            n, why = r["spec"].get("train"), (r.get("skipped") or r["failed"])[:120]
            lines.append(f"| {name} | {f'{n:,}' if n else ''} | | | | | | | | | {why} |")
            continue
        cuda = f" (CUDA measured: {fmt_mb(r['peak_cuda_mb'])})" if r.get("peak_cuda_mb") else ""
        ep = (f"{fmt_s(r['epoch_seconds'])} ({r['steps_per_epoch']:,} steps"
              f"{', extrapolated' if r['epoch_is_extrapolated'] else ''})")
        sampled = (f", extrapolated from {r['eval_sample_users']:,}" if r["eval_is_extrapolated"]
                   else "")
        ev = (f"{fmt_s(r['eval_seconds'])} ({r['eval_users']:,} users"
              f"{sampled})")
        lines.append(
            f"| {name} | {r['train_interactions']:,} | {r['users']:,} | {r['items']:,} | "
            f"{fmt_s(r['step_seconds'])} "
            f"| {ep} | {ev} | {fmt_mb(r['peak_mb'])} | "
            f"{r['peak_mb'] * 1e6 / r['train_interactions']:,.0f} "
            f"| {fmt_mb(tensor_need(r))}{cuda} | {r['load_mean']:.1f} |")
    return "\n".join(lines)


def slopes_text(f: dict) -> str:
    out = []
    for series, label in (("synthetic", "synthetic power-law graphs"),
                          ("gowalla", "Gowalla subsamples")):
        parts = []
        for key, name in METRICS:
            s = f.get(series, {}).get(key)
            if s:
                parts.append(f"{name.split(' (')[0]} {s['slope']:.2f}")
        if parts:
            out.append(f"log-log slopes vs training interactions, {label}: " + ", ".join(parts))
    return "\n".join(out)


def save_plot(rows: list[dict], f: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from lightgcn_helpers.env import plot_style

    plot_style()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    panels = (("epoch_seconds", "step_seconds", "Time per training epoch", "seconds"),
              ("eval_seconds", None, "Full-ranking evaluation", "seconds"),
              ("peak_mb", None, "Peak memory (above empty process)", "MB"))
    styles = {"synthetic": ("o", "C0", "synthetic power-law"),
              "gowalla": ("s", "C1", "Gowalla subsample")}
    for ax, (key, key2, title, unit) in zip(axes, panels):
        for series, (marker, color, label) in styles.items():
            pts = [r for r in measured(rows) if r["spec"]["source"] == series]
            if not pts:
                continue
            extrap_key = {"epoch_seconds": "epoch_is_extrapolated",
                          "eval_seconds": "eval_is_extrapolated"}.get(key)
            for extrap in (False, True):
                sel = [r for r in pts if bool(extrap_key and r[extrap_key]) == extrap]
                if sel:
                    ax.loglog([r["train_interactions"] for r in sel], [r[key] for r in sel], marker,
                              color=color,
                              mfc="none" if extrap else color, ms=7, ls="none",
                              label=f"{label}{' (extrapolated)' if extrap else ''}")
            s = f.get(series, {}).get(key)
            if s:
                xs = np.array(s["x_range"])
                ax.loglog(xs, 10 ** (s["intercept"] + s["slope"] * np.log10(xs)), "-", color=color,
                          lw=1,
                          label=f"fit {label.split()[0]}: slope {s['slope']:.2f}")
            if key == "peak_mb" and series == "synthetic":
                st = loglog_slope([r["train_interactions"] for r in pts],
                                  [tensor_need(r) for r in pts])
                slope = f", slope {st['slope']:.2f}" if st else ""
                ax.loglog([r["train_interactions"] for r in pts], [tensor_need(r) for r in pts],
                          "^", color="C3", ms=6, label="tensors (GPU estimate)" + slope)
            if key2 and series == "synthetic":
                s2 = f.get(series, {}).get(key2)
                ax.loglog([r["train_interactions"] for r in pts], [r[key2] for r in pts], "^",
                          color="C2", ms=6,
                          label="one step" + (f" (slope {s2['slope']:.2f})" if s2 else ""))
        ax.set_title(title)
        ax.set_xlabel("training interactions")
        ax.set_ylabel(unit)
        for axis, fmt in ((ax.xaxis, lambda v, _: human(v)), (ax.yaxis, lambda v, _: f"{v:g}")):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(fmt))
            axis.set_minor_formatter(NullFormatter())
        ax.margins(0.08)
        ax.legend(fontsize=9, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes",
                   help=f"synthetic graphs' training interactions (default {DEFAULT_SIZES}; "
                                   f"--tiny: {TINY_SIZES})")
    p.add_argument("--gowalla-fracs", default="0.1,0.25,0.5,1",
                   help="Gowalla subsamples (default 0.1,0.25,0.5,1)")
    p.add_argument("--no-gowalla", action="store_true", help="synthetic graphs only")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--recipe", default="series-gowalla",
                   help="training settings: a key of lightgcn_helpers.train.RECIPES (default "
                        "series-gowalla)")
    p.add_argument("--steps", type=int, default=3,
                   help="training steps timed after the first (default 3)")
    p.add_argument("--max-epoch-seconds", type=float, default=240.0,
                   help="also run a real train_bpr epoch when the extrapolated one is below this "
                        "(default 240)")
    p.add_argument("--eval-users", type=int, default=2000,
                   help="test users sampled for large graphs (default 2000)")
    p.add_argument("--full-eval-max", type=float, default=3e9,
                   help="evaluate all test users when users x items is at most this (default 3e9)")
    p.add_argument("--mem-budget-gb", type=float,
                   help="skip graphs predicted above this peak (default: 75 %% of the memory "
                        "available at the start)")
    p.add_argument("--child-timeout", type=float, default=3600.0,
                   help="seconds before a child is killed")
    p.add_argument("--tiny", action="store_true",
                   help="a few small synthetic graphs in seconds (smoke test)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder for scaling.json/.md/.png")
    p.add_argument("--record", action="store_true", help="copy the outputs to benchmarks/records/")
    p.add_argument("--resume", type=Path,
                   help="a previous scaling.json: its measured graphs (same names, device "
                                               "and training settings) are kept instead of run "
                                               "again (e.g. after an interruption)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return {}
    device = pick_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    size_list = args.sizes or (TINY_SIZES if args.tiny else DEFAULT_SIZES)
    sizes = [parse_size(s) for s in size_list.split(",") if s]
    fracs = ([] if (args.tiny or args.no_gowalla)
             else [float(f) for f in args.gowalla_fracs.split(",") if f])
    avail = _mem_available_gb()
    budget = args.mem_budget_gb or (0.75 * avail if avail else 16.0)
    common = {"device": str(device), "steps": 1 if args.tiny else args.steps,
              "max_epoch_seconds": args.max_epoch_seconds,
              "eval_users": 50 if args.tiny else args.eval_users,
              "full_eval_max": args.full_eval_max, "progress": False}
    if args.recipe not in RECIPES:
        raise SystemExit(f"--recipe {args.recipe!r}: lightgcn_helpers.train.RECIPES has "
                         f"{', '.join(RECIPES)}")
    # several steps per epoch on the tiny graphs
    config = replace(RECIPES[args.recipe], epochs=1, **({"batch_size": 2048} if args.tiny else {}))
    common["config"] = asdict(config)
    specs = [{"source": "gowalla", "frac": f, "name": f"Gowalla {f:.0%}", **common} for f in fracs]
    specs += [{"source": "synthetic", "train": n, "name": f"synthetic {human(n)}",
               **common} for n in sorted(sizes)]
    command = "python benchmarks/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res = {"command": command,
           "machine": {**machine_info(device), "mem_available_gb_at_start": avail},
           "env": {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY",
                                                     "PASSIVE (set for the children)")},
           "tiny": args.tiny, "mem_budget_gb": budget, "recipe": args.recipe,
           "config": common["config"],
           "synthetic_model": {"gamma_user": GAMMA_USER, "gamma_item": GAMMA_ITEM,
                               "kmin_user": KMIN_USER, "kmin_item": KMIN_ITEM,
                               "test_share": TEST_SHARE, "user_degree": USER_DEGREE,
                               "item_degree": ITEM_DEGREE, "tail_kmin": TAIL_KMIN}}
    args.out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet_progress() else (lambda msg: print(msg, file=sys.stderr,
                                                                        flush=True))
    if fracs:
        say("fitting power-law exponents on Gowalla ...")
        res["synthetic_model"]["fit_check"] = fit_gowalla_power_law()
    # each child's own resident size after its imports, before any data
    res["empty_child_mb"] = None
    previous = {}
    if args.resume:
        try:
            old_run = json.loads(args.resume.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"--resume {args.resume}: cannot read it ({err})") from None
        if old_run.get("tiny") != args.tiny:
            raise SystemExit(f"--resume {args.resume}: it was "
                             f"{'' if old_run.get('tiny') else 'not '}a --tiny run")
        previous = {r["spec"]["name"]: r for r in old_run.get("graphs", [])
                    if "failed" not in r and not r.get("skipped")
                    and r["spec"].get("device") == str(device)
                    and r.get("config") == common["config"]}
        res["resumed_from"] = {"path": str(args.resume), "command": old_run.get("command"),
                               "graphs": sorted(previous)}
    rows: list[dict] = []
    bar = tqdm(specs, desc="graphs", disable=quiet_progress())
    for spec in bar:
        bar.set_postfix_str(spec["name"])
        done = [r for r in measured(rows) if r["spec"]["source"] == "synthetic"]
        if spec["source"] == "synthetic" and len(done) >= 2:
            big = [r for r in done if r["train_interactions"] >= 1e6]
            big = big if len(big) >= 2 else done
            fit = linear_fit([r["train_interactions"] for r in big],
                             [max(r["peak_mb"], r["setup_peak_mb"] or 0) for r in big])
            predicted = (fit[0] + fit[1] * spec["train"]) / 1e3 + (res["empty_child_mb"] or 0) / 1e3
            spec["predicted_peak_gb"] = predicted
            now = _mem_available_gb()
            # others' use counts too
            allowed = min(budget, now - MARGIN_GB) if now is not None else budget
            if predicted > allowed:
                rows.append({"spec": spec,
                             "skipped": f"skipped: predicted peak {predicted:.1f} GB > "
                                                      f"{allowed:.1f} GB allowed (budget "
                                                      f"{budget:.1f} GB, "
                                                      f"{now:.1f} GB available now)"})
                say(rows[-1]["skipped"])
                continue
        if spec["name"] in previous:
            r = {**previous[spec["name"]], "resumed_from": str(args.resume)}
            rows.append(r)
            say(f"{spec['name']}: taken from {args.resume}")
            continue
        say(f"{spec['name']} ...")
        r = run_child(spec, kill_gb=1.1 * budget, timeout=args.child_timeout)
        rows.append(r)
        if res["empty_child_mb"] is None and r.get("empty_child_mb"):
            res["empty_child_mb"] = r["empty_child_mb"]
        if "failed" in r:
            say(f"{spec['name']} failed: {r['failed'][:300]}")
        else:
            say(f"{spec['name']}: epoch {fmt_s(r['epoch_seconds'])}, eval "
                f"{fmt_s(r['eval_seconds'])}, "
                f"peak {fmt_mb(r['peak_mb'])}, load {r['load_mean']:.1f}")
        res["graphs"] = rows
        # partial results survive
        (args.out / "scaling.json").write_text(json.dumps(res, indent=1) + "\n")
    bar.close()
    res["graphs"] = rows
    res["machine"]["load_at_end"] = load_average()
    ok = measured(rows)
    loads = [r["load_max"] for r in ok if r.get("load_max") is not None]
    res["load_max"] = max(loads, default=None)
    res["provisional"] = bool(res["load_max"] is not None and res["load_max"] > LOAD_LIMIT)
    res["fits"] = fits(rows)
    res["gpu_estimate"] = gpu_estimate(rows)
    syn = [r for r in ok if r["spec"]["source"] == "synthetic"]
    if syn:
        top = max(syn, key=lambda r: r["train_interactions"])
        res["largest_trained"] = {k: top.get(k) for k in (
            "train_interactions", "users", "items", "nnz", "step_seconds", "steps_per_epoch",
            "epoch_seconds", "epoch_is_extrapolated", "eval_seconds", "eval_is_extrapolated",
            "peak_mb", "setup_peak_mb")}
    checks = []
    for r in ok:
        if r.get("epoch_measured_seconds") and r["steps_per_epoch"] > 1:
            checks.append({"graph": r["spec"]["name"], "what": "epoch: extrapolated / measured",
                           "ratio": r["epoch_extrapolated_seconds"] / r["epoch_measured_seconds"]})
        if r.get("eval_measured_seconds") and r.get("eval_extrapolated_seconds"):
            checks.append({"graph": r["spec"]["name"],
                           "what": "evaluation: extrapolated / measured",
                           "ratio": r["eval_extrapolated_seconds"] / r["eval_measured_seconds"]})
    res["extrapolation_checks"] = checks
    table = markdown_table(rows)
    slopes = slopes_text(res["fits"])
    flag = (f"PROVISIONAL: the 1-minute load average reached {res['load_max']:.1f} (> "
            f"{LOAD_LIMIT}) during the run"
            if res["provisional"] else f"load average at most {res['load_max']}")
    text = "\n".join([table, "", slopes, "", flag])
    print(text)
    for c in checks:
        print(f"check, {c['graph']}: {c['what']} = {c['ratio']:.2f}")
    if res.get("largest_trained"):
        t = res["largest_trained"]
        print(f"largest synthetic graph trained: {t['train_interactions']:,} interactions, step "
              f"{fmt_s(t['step_seconds'])}, epoch {fmt_s(t['epoch_seconds'])}"
              f"{' (extrapolated)' if t['epoch_is_extrapolated'] else ''}, peak "
              f"{fmt_mb(t['peak_mb'])}")
    if res["gpu_estimate"]:
        g = res["gpu_estimate"]
        print("memory per training interaction: CPU peak RSS "
              f"{g['cpu_rss_bytes_per_interaction']:.0f} B "
              f"(+ {g['cpu_rss_fit_intercept_mb']:.0f} MB); tensors (the GPU estimate) "
              f"{g['tensor_bytes_per_interaction']:.0f} B "
              f"(+ {g['tensor_fit_intercept_mb']:.0f} MB)")
        print("GPU memory needed (estimate): " + ", ".join(f"{k} interactions {v:.1f} GB"
                                                           for k, v in g["gpu_gb_needed"].items()))
    (args.out / "scaling.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "scaling.md").write_text(text + "\n")
    save_plot(rows, res["fits"], args.out / "scaling.png")
    print(f"wrote {args.out / 'scaling.json'}, scaling.md, scaling.png")
    if args.record:
        rec = HERE / "records"
        rec.mkdir(exist_ok=True)
        for name in ("scaling.json", "scaling.md", "scaling.png"):
            shutil.copyfile(args.out / name, rec / name)
        print(f"copied to {rec}")
    return res


if __name__ == "__main__":
    main()
