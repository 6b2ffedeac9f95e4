"""Benchmark: the original notebook's pipeline versus ``lightgcn_helpers``, stage by stage.

    python benchmarks/run_benchmarks.py [--device cpu|cuda] [--repeats N] [--tiny] [--out DIR]

Every row is measured in this one process, original and helpers side by side (median of
``--repeats`` runs after one warm-up), except peak memory, which is measured in a fresh
child process per stage (peak resident set size above the child's baseline; on a GPU, peak
allocated CUDA memory). Prints a markdown table to stdout and writes ``results.json``,
``table.md`` and ``speedups.png`` to ``--out`` (default ``benchmarks/results/``).
``--tiny`` runs everything on a small synthetic ratings table in seconds (used by the
smoke test; its numbers mean nothing). See ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
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
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from lightgcn_helpers._fast import ExcludedIndex  # noqa: E402
from lightgcn_helpers.env import (  # noqa: E402
    has_torch_sparse,
    load_average,
    machine_info,
    quiet_progress,
    seed_everything,
    time_calls,
)
from lightgcn_helpers.graph import (  # noqa: E402
    ColdStartWarning,
    IdEncoder,
    bipartite_edge_index,
    build_movielens_graph,
    normalized_adjacency,
    positive_edges,
)
from lightgcn_helpers.metrics import evaluate_embeddings  # noqa: E402
from lightgcn_helpers.model import LightGCN, propagate_matrix_form  # noqa: E402
from lightgcn_helpers.sampling import BPRSampler, contains, edge_keys  # noqa: E402
from lightgcn_helpers.train import TrainConfig, train_bpr  # noqa: E402

import original  # noqa: E402  (benchmarks/original.py)
from measured import fingerprint, marker  # noqa: E402  (benchmarks/measured.py)

# torch_sparse and the original's sparse conversions trigger this once; it says nothing about speed.
warnings.filterwarnings("ignore", message=".*Sparse invariant checks are implicitly disabled.*")
# original.load_edges
warnings.filterwarnings("ignore", message=".*The given NumPy array is not writable.*")
# The MovieLens split leaves a few users without a training edge (notebook 02, §6): said once by
# notebook 02, not at every one of the benchmark's graph constructions.
warnings.filterwarnings("ignore", category=ColdStartWarning)

DIM, LAYERS, K = 64, 3, 20
THRESHOLD = 3.5
LOAD_LIMIT = 1.5  # 1-minute load average above which timings are flagged provisional

# Targets from issue 5.
TARGET_GRAPH_SPEEDUP = 50.0
TARGET_GRAPH_MB = 100.0
TARGET_EPOCH_SPEEDUP = 20.0
TARGET_EPOCH_SECONDS = 0.3

# Evaluation masking at scale: a synthetic graph (users × movies, training likes per user).
MASK_USERS, MASK_ITEMS, MASK_PER_USER, MASK_CHUNK = 100_000, 5_000, 5, 1024
MASK_TINY = (2_000, 500)


# --- data ---------------------------------------------------------------------------

def synthetic_ratings(num_users: int = 50, num_movies: int = 200, per_user: int = 30,
                      seed: int = 0) -> pd.DataFrame:
    """A small MovieLens-shaped ratings table (non-contiguous raw ids, half-star ratings)."""
    rng = np.random.default_rng(seed)
    movies = np.argsort(rng.random((num_users, num_movies)), axis=1)[:, :per_user].ravel()
    users = np.repeat(np.arange(num_users), per_user)
    return pd.DataFrame({
        "userId": users + 1,
        "movieId": movies * 7 + 1,
        "rating": rng.choice(np.arange(1, 11) / 2, size=users.size),
        "timestamp": rng.integers(9e8, 1.5e9, size=users.size),
    })


def get_ratings(tiny: bool) -> pd.DataFrame:
    if tiny:
        return synthetic_ratings()
    from lightgcn_helpers.data import load_ratings
    return load_ratings()


# --- measuring ----------------------------------------------------------------------

def timed(fn, repeats: int, device, warmup: int = 1) -> dict:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs
    (``env.time_calls``)."""
    times = time_calls(fn, repeats, warmup, device)
    return {"median": statistics.median(times), "times": times}


def _status_kb(field: str, path: str = "/proc/self/status") -> int | None:
    """A "<field>: <n> kB" line of a /proc file (this process's status by default), in kB;
    None where /proc cannot be read."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS watermark (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def _ru_maxrss_kb() -> int:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def child_main(args) -> int:
    """Runs ONE memory stage in this fresh process and prints a JSON line with its peak memory."""
    device = torch.device(args.device)
    ratings = get_ratings(args.tiny)
    stage, run = args.child, None
    if stage == "graph_original":
        def run():
            return original.build_graph(ratings, THRESHOLD)
    elif stage == "graph_helpers":
        def run():
            g = build_movielens_graph(ratings, THRESHOLD)
            return g.train_adjacency("csr")
    elif stage in ("eval_original", "eval_helpers"):
        g = build_movielens_graph(ratings, THRESHOLD)
        nu, ni = g.num_users, g.num_items
        gen = torch.Generator().manual_seed(0)
        users = (0.1 * torch.randn(nu, DIM, generator=gen)).to(device)
        items = (0.1 * torch.randn(ni, DIM, generator=gen)).to(device)
        train, val, test = (e.to(device) for e in (g.split.train, g.split.val, g.split.test))
        bi = {name: bipartite_edge_index(e, nu) for name, e in (("train", train), ("val", val),
                                                                ("test", test))}
        if stage == "eval_original":
            def run():
                return original.get_metrics(users.clone(), items, bi["test"],
                                            [bi["train"], bi["val"]], K, nu, ni)
        else:
            def run():
                return evaluate_embeddings(users, items, test, [train, val], ks=(K,))
    else:
        raise SystemExit(f"unknown child stage {stage!r}")
    gc.collect()
    out = {"stage": stage}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        gpu_base = torch.cuda.memory_allocated(device)
    if _reset_peak_rss():
        base, method = _status_kb("VmRSS"), "VmHWM - VmRSS before (clear_refs)"
        run()
        peak = _status_kb("VmHWM")
    else:
        base, method = _ru_maxrss_kb(), "ru_maxrss delta"
        run()
        peak = _ru_maxrss_kb()
    out.update(rss_mb=max(peak - base, 0) * 1024 / 1e6, method=method)  # MB = 10^6 bytes
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        out["gpu_mb"] = (torch.cuda.max_memory_allocated(device) - gpu_base) / 1e6
    print(json.dumps(out))
    return 0


def start_child(stage: str, args, device_for_stage: torch.device) -> subprocess.Popen:
    """Start a fresh process that runs one memory stage (see :func:`child_main`)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--device",
           str(device_for_stage)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.tiny:
        cmd.append("--tiny")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_child(stage: str, proc: subprocess.Popen, device_for_stage: torch.device) -> dict:
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {stage!r} failed:\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["mb"] = res.get("gpu_mb",
                        res["rss_mb"]) if device_for_stage.type == "cuda" else res["rss_mb"]
    return res


# --- the benchmark ------------------------------------------------------------------

class Bench:
    def __init__(self, args, device: torch.device, ratings: pd.DataFrame):
        self.args, self.device, self.ratings = args, device, ratings
        self.repeats = args.repeats
        self.slow_repeats = max(1, min(args.repeats, 3))  # for the multi-second original stages
        self.rows: list[dict] = []
        self.checks: dict = {}
        self.extra: dict = {}
        self.memory_jobs: list = []
        seed_everything(0)
        self.g = build_movielens_graph(ratings, THRESHOLD)
        self.nu, self.ni = self.g.num_users, self.g.num_items
        self.train = self.g.split.train.to(device)
        self.val = self.g.split.val.to(device)
        self.test = self.g.split.test.to(device)
        # bidirectional (2, 2E), as the original's
        self.train_ei = self.g.train_edge_index().to(device)
        self.adj_csr = self.g.train_adjacency("csr").to(device)
        self.cfg = TrainConfig()

    def row(self, stage, original_value, helpers_value, unit, target="", met=None, note="",
            ratio=None, key="",
            short=""):
        if ratio is None and original_value and helpers_value:
            ratio = original_value / helpers_value
        self.rows.append({"key": key, "stage": stage, "original": original_value,
                          "helpers": helpers_value,
                          "unit": unit, "ratio": ratio, "target": target, "met": met, "note": note,
                          "short": short or stage})

    def met(self, ok: bool):
        return None if self.args.tiny else bool(ok)

    # 1. graph construction (CPU: the input is a pandas DataFrame) ----------------------
    def graph(self):
        r, cpu = self.ratings, "cpu"

        def helper_edges():
            users = IdEncoder("userId").fit(r["userId"].to_numpy())
            items = IdEncoder("movieId").fit(r["movieId"].to_numpy())
            return positive_edges(r, users, items, THRESHOLD)

        # Untimed: the original pipeline must produce exactly the helpers' graph.
        o = original.build_graph(r, THRESHOLD)
        nu, nm = o["num_users"], o["num_movies"]
        self.checks["edges_identical"] = bool(torch.equal(o["edge_index"], self.g.edges))
        self.checks["split_identical"] = all(bool(torch.equal(o[part], getattr(self.g.split, part)))
                                             for part in ("train", "val", "test"))
        train = self.g.split.train
        h_adj = self.adj_csr.to_sparse_coo().coalesce().indices().cpu()  # the Ã every stage uses
        self.checks["adjacency_identical"] = bool(torch.equal(o["train_adj"], h_adj))
        t_o = timed(lambda: original.load_edges(r, THRESHOLD), self.repeats, cpu)
        t_h = timed(helper_edges, self.repeats, cpu)
        self.row("Edges from ratings (encode ids, keep rating ≥ 3.5)", t_o["median"], t_h["median"],
                 "s",
                 key="edges", short="edges from ratings",
                 note="original: dict mappings + loop over every rating")

        t_o = timed(lambda: original.convert_r_mat_edge_index_to_adj_mat_edge_index(train, nu, nm),
                    self.slow_repeats, cpu)
        t_h = timed(lambda: normalized_adjacency(train, self.nu, self.ni, "csr"), self.repeats, cpu)
        self.row("Training interactions → adjacency", t_o["median"], t_h["median"], "s",
                 key="adjacency", short="interactions → adjacency",
                 note="original: dense R and dense (N, N) matrix, unnormalized edge_index; "
                      "helpers: normalized sparse CSR Ã (more work)")

        t_o = timed(lambda: original.build_graph(r, THRESHOLD), self.slow_repeats, cpu)
        t_h = timed(lambda: build_movielens_graph(r, THRESHOLD).train_adjacency("csr"),
                    self.repeats, cpu)
        ratio = t_o["median"] / t_h["median"]
        self.row("Graph construction total (ratings → training graph)", t_o["median"],
                 t_h["median"], "s",
                 target=f"≥ {TARGET_GRAPH_SPEEDUP:.0f}×",
                 met=self.met(ratio >= TARGET_GRAPH_SPEEDUP),
                 key="graph", short="graph construction",
                 note="edges + 80/10/10 split + training adjacency")

        self.memory_row("Graph construction, peak memory", "graph", torch.device("cpu"),
                        short="graph construction (memory)",
                        target=f"< {TARGET_GRAPH_MB:.0f} MB", limit=TARGET_GRAPH_MB,
                        key="graph_memory",
                        note="peak RSS above a fresh process's baseline")

    # 2. sampling ---------------------------------------------------------------------
    def sampling(self, batch: int = original.BATCH_SIZE):
        nu = self.nu
        keys = edge_keys(self.train, self.ni)
        sampled_o, sampled_h = [], []

        def orig():
            sampled_o.append(original.sample_mini_batch(batch, self.train_ei))

        sampler = BPRSampler(self.train, nu, self.ni, seed=0)

        def helper():
            sampled_h.append(sampler.sample(batch))

        t_o = timed(orig, self.repeats, self.device)
        t_h = timed(helper, self.repeats, self.device)
        self.row(f"Sampling one batch of {batch:,}", t_o["median"], t_h["median"], "s",
                 key="sampling", short="sampling a batch",
                 note="original: structured_negative_sampling over all 2E bidirectional edges per "
                      "batch")

        def invalid(u, j):
            """Shares of invalid triples, from node ids (users < nu <= movies), for either
            sampler."""
            movie_as_user, user_as_neg = u >= nu, (j < nu) | (j >= nu + self.ni)
            real = ~movie_as_user & ~user_as_neg
            liked_neg = torch.zeros_like(real)
            liked_neg[real] = contains(keys, u[real], j[real] - nu, self.ni)
            return {"movie as user": movie_as_user, "user as negative": user_as_neg,
                    "liked movie as negative": liked_neg,
                    "any of these": movie_as_user | user_as_neg | liked_neg}

        u, _, j = (torch.cat(x) for x in zip(*sampled_o))
        hu, _, hj = (torch.cat(x) for x in zip(*sampled_h))  # movie indices NOT offset by num_users
        inv_o, inv_h = invalid(u, j), invalid(hu, hj + nu)
        shares = {k: (inv_o[k].float().mean().item(),
                      inv_h[k].float().mean().item()) for k in inv_o}
        self.extra["invalid_sample_shares"] = {k: {"original": a, "helpers": b}
                                               for k, (a, b) in shares.items()}
        self.extra["invalid_samples_checked"] = {"original": int(u.numel()),
                                                 "helpers": int(hu.numel())}
        for name, (a, b) in shares.items():
            self.row(f"Invalid samples: {name}", 100 * a, 100 * b, "%", ratio=float("nan"),
                     key=f"invalid_{name}",
                     short="invalid samples",
                     note=f"share of the {u.numel():,} (original) / {hu.numel():,} (helpers) "
                          "sampled triples")

    # 3. propagation backends ------------------------------------------------------------
    def propagation(self):
        dev, nu, ni = self.device, self.nu, self.ni
        torch.manual_seed(0)
        ref = LightGCN(nu, ni, DIM, LAYERS).to(dev)
        w = ref.embedding.weight.detach()

        om = original.OriginalLightGCN(nu, ni, DIM, LAYERS).to(dev)
        with torch.no_grad():
            om.users_emb.weight.copy_(w[:nu])
            om.items_emb.weight.copy_(w[nu:])

        def orig_step():
            om.zero_grad(set_to_none=True)
            emb, _ = om(self.train_ei)
            emb.sum().backward()

        t_o = timed(orig_step, self.repeats, self.device)
        with torch.no_grad():  # the reference: the matrix form Σ α_k Ã^k E⁰, with a sparse COO Ã
            expected = propagate_matrix_form(w, self.g.train_adjacency("coo").to(dev), LAYERS)
            diff = (om(self.train_ei)[0] - expected).abs().max().item()
            self.checks["propagation_max_abs_diff"] = {"original-style": diff}

        backends = [("edge_index gather/scatter (helpers' LightGCN)", self.train_ei),
                    ("torch.sparse CSR (helpers' LightGCN)", self.adj_csr)]
        if has_torch_sparse():
            from torch_sparse import SparseTensor
            coo = self.g.train_adjacency("coo").to(dev)
            r, c = coo.indices()
            st = SparseTensor(row=r, col=c, value=coo.values(), sparse_sizes=tuple(coo.shape))
            backends.append(("torch_sparse SparseTensor (helpers' LightGCN)", st))
        else:
            self.extra["sparse_tensor_skipped"] = "torch-sparse is not installed"
            self.row("Propagation: torch_sparse SparseTensor", t_o["median"], None, "s",
                     ratio=float("nan"),
                     key="prop", note="skipped: torch-sparse is not installed",
                     short="propagation: torch_sparse SparseTensor")

        for name, adj in backends:
            def step(adj=adj):
                ref.zero_grad(set_to_none=True)
                ref.propagate_embeddings(adj).sum().backward()
            t_h = timed(step, self.repeats, self.device)
            with torch.no_grad():
                diff = (ref.propagate_embeddings(adj) - expected).abs().max().item()
            self.checks["propagation_max_abs_diff"][name] = diff
            self.row(f"Propagation, {LAYERS} layers fwd+bwd: {name}", t_o["median"], t_h["median"],
                     "s",
                     key="prop", note="vs the original MessagePassing (gcn_norm every forward)",
                     short="propagation: " + name.split(" (")[0])

        from torch_geometric.nn.models import LightGCN as PyGLightGCN
        pyg = PyGLightGCN(nu + ni, DIM, LAYERS).to(dev)
        with torch.no_grad():
            pyg.embedding.weight.copy_(w)

        def pyg_step():
            pyg.zero_grad(set_to_none=True)
            pyg.get_embedding(self.train_ei).sum().backward()

        t_h = timed(pyg_step, self.repeats, self.device)
        with torch.no_grad():
            diff = (pyg.get_embedding(self.train_ei) - expected).abs().max().item()
            self.checks["propagation_max_abs_diff"]["PyG LightGCN"] = diff
        self.row(f"Propagation, {LAYERS} layers fwd+bwd: PyG nn.models.LightGCN", t_o["median"],
                 t_h["median"], "s",
                 key="prop", note="get_embedding(edge_index)",
                 short="propagation: PyG LightGCN")

    # 4. one training epoch ---------------------------------------------------------------
    def epoch(self):
        dev, nu, ni = self.device, self.nu, self.ni
        n_train = self.train.shape[1]
        batches = math.ceil(n_train / original.BATCH_SIZE)
        k = max(1, min(batches, self.args.orig_batches))
        torch.manual_seed(0)
        om = original.OriginalLightGCN(nu, ni, DIM, LAYERS).to(dev)
        opt = torch.optim.Adam(om.parameters(), lr=original.LR)

        def orig_batches():
            for _ in range(k):
                original.train_step(om, opt, self.train_ei)

        t_o = timed(orig_batches, self.slow_repeats, self.device)
        orig_epoch = t_o["median"] * batches / k
        how = "measured" if k == batches else f"extrapolated from {k} of {batches} batches"
        mark = "" if k == batches else f"; original extrapolated from {k}"
        self.extra["original_epoch"] = {"batches_per_epoch": batches, "batches_timed": k,
                                        "seconds_per_batch": t_o["median"] / k}

        torch.manual_seed(0)
        model = LightGCN(nu, ni, DIM, LAYERS).to(dev)
        cfg_1024 = replace(self.cfg, epochs=1, batch_size=original.BATCH_SIZE)
        cfg_nb = replace(self.cfg, epochs=1)
        t_1024 = timed(lambda: train_bpr(model, self.adj_csr, self.train, None, cfg_1024,
                                         progress=False),
                       self.slow_repeats, self.device)
        t_nb = timed(lambda: train_bpr(model, self.adj_csr, self.train, None, cfg_nb,
                                       progress=False),
                     self.repeats, self.device)
        self.model = model
        self.row(f"One epoch, batch {original.BATCH_SIZE:,} ({batches} batches{mark})", orig_epoch,
                 t_1024["median"], "s",
                 key="epoch_1024", short=f"epoch, batch {original.BATCH_SIZE}",
                 note=f"original-style: {how}; helpers: train_bpr, CSR, same batch size")
        ratio = orig_epoch / t_nb["median"]
        nb_batches = math.ceil(n_train / cfg_nb.batch_size)
        self.row(f"One epoch at the notebooks' settings (batch {cfg_nb.batch_size:,}, {nb_batches} "
                 "batches; "
                 f"original: batch {original.BATCH_SIZE:,}{mark})",
                 orig_epoch, t_nb["median"], "s", target=f"≥ {TARGET_EPOCH_SPEEDUP:.0f}×",
                 met=self.met(ratio >= TARGET_EPOCH_SPEEDUP), key="epoch",
                 short=f"epoch, notebooks' batch {cfg_nb.batch_size}",
                 note=f"original-style at batch {original.BATCH_SIZE:,}, {how}")
        cpu_note = ("" if dev.type == "cpu"
                    else " (target is for the 2-core CPU; this run is on a GPU)")
        self.row("Epoch time at the notebooks' settings", None, t_nb["median"], "s",
                 ratio=float("nan"),
                 target=f"≤ {TARGET_EPOCH_SECONDS} s",
                 met=self.met(t_nb["median"] <= TARGET_EPOCH_SECONDS),
                 key="epoch_abs",
                 note=f"on {os.cpu_count()} CPU core(s), {torch.get_num_threads()} torch "
                      f"thread(s){cpu_note}")

    # 5. evaluation -----------------------------------------------------------------------
    def evaluation(self):
        nu, ni = self.nu, self.ni
        with torch.no_grad():
            self.model.eval()
            users, items = self.model(self.adj_csr)
        parts = (("train", self.train), ("val", self.val), ("test", self.test))
        bi = {n: bipartite_edge_index(e, nu) for n, e in parts}
        res_o = original.get_metrics(users.clone(), items, bi["test"], [bi["train"], bi["val"]], K,
                                     nu, ni)
        res_h = evaluate_embeddings(users, items, self.test, [self.train, self.val], ks=(K,))
        self.checks["evaluation_original_vs_helpers"] = {
            "original": dict(zip((f"recall@{K}", f"precision@{K}", f"ndcg@{K}"), res_o)),
            "helpers": {k: v for k, v in res_h.items() if k != "users"},
        }
        t_o = timed(lambda: original.get_metrics(users.clone(), items, bi["test"],
                                                 [bi["train"], bi["val"]], K, nu, ni),
                    self.slow_repeats, self.device)
        t_h = timed(lambda: evaluate_embeddings(users, items, self.test, [self.train, self.val],
                                                ks=(K,)),
                    self.repeats, self.device)
        self.row(f"Full-ranking evaluation, all test users (@{K})", t_o["median"], t_h["median"],
                 "s",
                 key="eval", short="evaluation",
                 note="original get_metrics: dense conversions, Python loops; masks train+val")
        where = "GPU allocated" if self.device.type == "cuda" else "RSS"
        self.memory_row("Full-ranking evaluation, peak memory", "eval", self.device,
                        key="eval_memory",
                        short="evaluation (memory)",
                        note=f"peak {where} above a fresh process's baseline")

    # 6. evaluation masking at 100k users ------------------------------------------------
    def masking(self):
        """Masking the seen movies of every user, chunk by chunk, as full-ranking evaluation does:
        the previous helpers' scan of all excluded interactions per chunk (reference below)
        versus the per-user index built once (``_fast.ExcludedIndex``, used by ``topk_items``: the
        excluded movies of all users gathered in one vectorized pass, a contiguous slice per
        chunk)."""
        dev = self.device
        nu, ni = MASK_TINY if self.args.tiny else (MASK_USERS, MASK_ITEMS)
        g = torch.Generator().manual_seed(0)
        train = torch.stack([torch.arange(nu).repeat_interleave(MASK_PER_USER),
                             torch.randint(0, ni, (nu * MASK_PER_USER,), generator=g)]).to(dev)
        val = torch.stack([torch.arange(nu), torch.randint(0, ni, (nu,), generator=g)]).to(dev)
        # every user, in random order
        exclude, users = [train, val], torch.randperm(nu, generator=g).to(dev)
        chunks = [(i, users[i:i + MASK_CHUNK]) for i in range(0, nu, MASK_CHUNK)]
        buf = torch.zeros(MASK_CHUNK, ni, device=dev)  # stands in for a chunk's scores

        def scan(batch, out):
            """The previous ``topk_items`` masking: every chunk scans every excluded interaction."""
            row_of = torch.full((nu,), -1, dtype=torch.long, device=dev)
            row_of[batch] = torch.arange(batch.numel(), device=dev)
            for e in exclude:
                rows = row_of[e[0]]
                sel = rows >= 0
                out[rows[sel], e[1, sel]] = float("-inf")

        def indexed(index, start, batch, out):
            rows, items = index.entries(start, start + batch.numel())
            out[rows, items] = float("-inf")

        def run_scan():
            for _, batch in chunks:
                scan(batch, buf[:batch.numel()])

        def run_indexed():
            index = ExcludedIndex(exclude, ni, users)  # built once per evaluation, timed with it
            for start, batch in chunks:
                indexed(index, start, batch, buf[:batch.numel()])

        # Untimed: both mask exactly the same (row, movie) cells in every chunk.
        index, other, same = ExcludedIndex(exclude, ni, users), torch.zeros_like(buf), True
        for start, batch in chunks:
            buf.zero_()
            other.zero_()
            scan(batch, buf[:batch.numel()])
            indexed(index, start, batch, other[:batch.numel()])
            same = same and bool(torch.equal(torch.isinf(buf), torch.isinf(other)))
        self.checks["masking_identical"] = same
        t_o = timed(run_scan, self.slow_repeats, dev)
        t_h = timed(run_indexed, self.repeats, dev)
        self.extra["masking_graph"] = {"users": nu, "movies": ni,
                                       "excluded": int(train.shape[1] + val.shape[1]),
                                       "chunk_size": MASK_CHUNK, "chunks": len(chunks)}
        self.row(f"Evaluation masking, {nu:,} users × {ni:,} movies ({len(chunks)} chunks of "
                 f"{MASK_CHUNK:,})",
                 t_o["median"], t_h["median"], "s", key="eval_masking", short="evaluation masking",
                 note=f"synthetic: {MASK_PER_USER} training + 1 validation movies per user masked "
                      "in every chunk; "
                      "original: the previous helpers' scan of all "
                      f"{int(train.shape[1] + val.shape[1]):,} "
                      f"excluded pairs per chunk; helpers: per-user index built once (topk_items)")

    # memory: one fresh child process per (stage, implementation), run after all timings ----
    def memory_row(self, stage, prefix, device, target="", limit=None, key="", note="", short=""):
        """Add a memory row now; its values are filled by :meth:`measure_memory`."""
        self.row(stage, None, None, "MB", target=target, key=key, note=note, short=short)
        self.memory_jobs.append((self.rows[-1], prefix, device, limit))

    def measure_memory(self):
        """Run the memory children after every timing (so they do not disturb one), two at a
        time: each reports its own peak, so running them side by side changes no number."""
        for row, prefix, device, limit in self.memory_jobs:
            procs = {impl: start_child(f"{prefix}_{impl}", self.args,
                                       device) for impl in ("original", "helpers")}
            res = {impl: finish_child(f"{prefix}_{impl}", p, device) for impl, p in procs.items()}
            row["original"], row["helpers"] = res["original"]["mb"], res["helpers"]["mb"]
            row["ratio"] = row["original"] / row["helpers"] if row["helpers"] else None
            if limit is not None:
                row["met"] = self.met(row["helpers"] < limit)
            self.extra["memory_method"] = res["helpers"]["method"]

    def run(self):
        stages = [("graph construction", self.graph), ("sampling", self.sampling),
                  ("propagation", self.propagation), ("training epoch", self.epoch), ("evaluation",
                                                                                      self.evaluation),
                  ("evaluation masking", self.masking),
                  ("peak memory (child processes)", self.measure_memory)]
        bar = tqdm(stages, desc="benchmarks", disable=quiet_progress(), leave=False)
        for name, fn in bar:
            bar.set_postfix_str(name)
            fn()
        bar.close()


# --- reporting ----------------------------------------------------------------------

def fmt_value(v, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if unit == "s":
        if v >= 1:
            return f"{v:.2f} s"
        if v >= 1e-3:
            return f"{v * 1e3:.1f} ms"
        return f"{v * 1e6:.0f} µs"
    if unit == "MB":
        return f"{v:,.0f} MB" if v >= 10 else f"{v:.1f} MB"
    if unit == "%":
        return f"{v:.1f} %"
    return f"{v:g}"


def fmt_ratio(r) -> str:
    if r is None or (isinstance(r, float) and math.isnan(r)):
        return "—"
    if r >= 10:
        return f"{r:,.0f}×"
    return f"{r:.1f}×"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| Stage | Original | Helpers | Ratio (original / helpers) | Target | Met? |",
             "|---|---:|---:|---:|---|---|"]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        if r["target"] and r["met"] is None:
            met = "n/a (--tiny)"
        lines.append(f"| {r['stage']} | {fmt_value(r['original'], r['unit'])} | "
                     f"{fmt_value(r['helpers'], r['unit'])} "
                     f"| {fmt_ratio(r['ratio'])} | {r['target']} | {met} |")
    notes, seen = [], set()
    for r in rows:
        if r["note"] and r["note"] not in seen:
            seen.add(r["note"])
            notes.append(f"- {r['short'].split(':')[0]}: {r['note']}")
    return "\n".join(lines) + "\n\nNotes:\n" + "\n".join(notes)


def bench_machine_info(device: torch.device) -> dict:
    info = machine_info(device)
    info["nproc"] = info["cpu_count"]  # the key older records used
    return info


def save_chart(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows
             if r["ratio"] is not None and not math.isnan(r["ratio"]) and r["ratio"] > 0]
    labels = [r["short"] for r in shown][::-1]
    ratios = [r["ratio"] for r in shown][::-1]
    colors = ["tab:orange" if r["unit"] == "MB" else "tab:blue" for r in shown][::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(shown) + 1.4), dpi=80)
    ax.barh(range(len(shown)), ratios, color=colors)
    ax.set_xscale("log")
    ax.axvline(1, color="black", lw=0.8)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    for y, v in enumerate(ratios):
        ax.text(v, y, f" {fmt_ratio(v)}", va="center", fontsize=8)
    ax.set_xlim(right=max(ratios) * 4)
    ax.set_xlabel("original / helpers (log scale; > 1: helpers better)")
    ax.set_title("Helpers vs the original pipeline (blue: time, orange: peak memory)", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed repeats per measurement, after one warm-up (default 5; "
                   "multi-second original stages use at most 3)")
    p.add_argument("--tiny", action="store_true",
                   help="small synthetic data, a few seconds; numbers mean nothing")
    p.add_argument("--orig-batches", type=int, default=5,
                   help="batches of the original-style loop timed per repeat, extrapolated to an "
                        "epoch (default 5)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads(N) before measuring (default: PyTorch's choice)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="output folder (default benchmarks/results)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.orig_batches < 1:
        p.error("--orig-batches must be at least 1")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        p.error(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda was asked for, but PyTorch sees no CUDA GPU; run with --device cpu")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child_main(args)
    device = torch.device(args.device)
    info = bench_machine_info(device)  # its load_at_start is read here, before anything runs
    load_start = load_average(float("nan"))
    started = time.perf_counter()
    ratings = get_ratings(args.tiny)
    bench = Bench(args, device, ratings)
    bench.run()
    load_end = load_average(float("nan"))
    elapsed = time.perf_counter() - started
    provisional = max(load_start, load_end) > LOAD_LIMIT

    table = markdown_table(bench.rows)
    cfg = asdict(bench.cfg)
    settings = ", ".join(f"{k}={cfg[k]}" for k in ("batch_size", "lr", "l2_lambda", "num_negatives",
                                                   "hard_negatives", "lr_decay")
                         if k in cfg)
    data_desc = "synthetic --tiny ratings" if args.tiny else "MovieLens ml-latest-small"
    header = (f"Data: {data_desc} ({len(ratings):,} ratings; {bench.nu:,} users, {bench.ni:,} "
              "movies, "
              f"{bench.train.shape[1]:,} training edges). Device: {device}. "
              f"CPU: {info['cpu_model']}, {info['nproc']} core(s), {info['torch_threads']} torch "
              "thread(s); "
              f"torch {info['torch']}, "
              f"torch_geometric {info['torch_geometric']}. Median of {args.repeats} repeat(s) "
              "after a warm-up "
              f"(multi-second original stages: {bench.slow_repeats}). "
              f"Notebook settings read from TrainConfig(): {settings}. "
              f"Load average {load_start:.2f} at start, {load_end:.2f} at end"
              + (" — PROVISIONAL: the machine was busy, timings are noisy." if provisional
                 else "."))
    print(header)
    print()
    print(table)
    print()
    print(marker("run_benchmarks"))
    print()
    print("Checks: " + json.dumps(bench.checks, default=float))
    if "sparse_tensor_skipped" in bench.extra:
        print(f"Note: SparseTensor row skipped ({bench.extra['sparse_tensor_skipped']}).")

    args.out.mkdir(parents=True, exist_ok=True)
    cli = argv if argv is not None else sys.argv[1:]
    result = {"command": " ".join(["python", "benchmarks/run_benchmarks.py", *map(str, cli)]),
              "machine": info, "device": str(device), "tiny": args.tiny, "repeats": args.repeats,
              "slow_repeats": bench.slow_repeats, "train_config": asdict(bench.cfg),
              "data": {"ratings": len(ratings), "users": bench.nu, "movies": bench.ni,
                       "train_edges": int(bench.train.shape[1])},
              "load_average": {"start": load_start, "end": load_end, "provisional": provisional},
              "elapsed_s": elapsed, "rows": bench.rows, "checks": bench.checks,
              "extra": bench.extra, "measured_code": fingerprint("run_benchmarks")}
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=float))
    # the marker travels with the table (tests/test_benchmark_tables.py)
    (args.out / "table.md").write_text(f"{header}\n\n{table}\n\n{marker('run_benchmarks')}\n")
    save_chart(bench.rows, args.out / "speedups.png")
    print(f"Wrote results.json, table.md and speedups.png to {args.out} in {elapsed:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
