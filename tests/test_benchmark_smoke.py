"""Smoke test of benchmarks/run_benchmarks.py at --tiny size: it runs, prints the table and
writes its files, and the original-style reference agrees with the helpers. No timing is
asserted."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_at_tiny_size(tmp_path):
    env = {**os.environ, "CI": "true"}  # quiet progress bars
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_benchmarks.py"), "--tiny", "--repeats", "1",
         "--orig-batches", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| Stage | Original | Helpers |" in out
    for stage in ("Graph construction total", "Sampling one batch", "Propagation", "One epoch",
                  "Full-ranking evaluation", "peak memory"):
        assert stage in out, stage
    for name in ("results.json", "table.md", "speedups.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["tiny"] is True
    # Every timed row has positive numbers on both sides (or is an explicit skip).
    for row in res["rows"]:
        if row["unit"] in ("s",
                           "MB") and row["helpers"] is not None and row["original"] is not None:
            assert row["original"] > 0 and row["helpers"] > 0, row
    # The reference implementation computes the same things as the helpers.
    checks = res["checks"]
    assert checks["edges_identical"] and checks["split_identical"] and checks["adjacency_identical"]
    assert all(d < 1e-5 for d in checks["propagation_max_abs_diff"].values())
    ev = checks["evaluation_original_vs_helpers"]
    for key, value in ev["original"].items():
        assert math.isclose(value, ev["helpers"][key], abs_tol=1e-6), key
    # The original sampler's defect is visible even at tiny size; the helpers' sampler has none.
    shares = res["extra"]["invalid_sample_shares"]
    assert shares["movie as user"]["original"] > 0.2
    assert shares["any of these"]["helpers"] == 0.0


def test_split_comparison_describes_held_out_pairs():
    """benchmarks/gowalla_splits.py's statistics on a toy graph, by hand: in training, item 0 has
    3 likes, item 1 two, item 2 one, items 3-24 none; each user holds out one item."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from gowalla_splits import describe
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    train = torch.tensor([[0, 1, 2, 0, 2, 1], [0, 0, 0, 1, 1, 2]])
    held = torch.tensor([[0, 1, 2], [2, 1, 2]])
    r = describe(train, held, num_users=3, num_items=25)
    assert r["pairs"] == 3
    # degrees 1, 2, 1
    assert r["item_train_degree_median"] == 1 and r["item_train_degree_mean"] == 1.3
    assert r["held_per_train_pair_median"] == 0.5  # one held-out pair per two training pairs
    # popularity ranks items 0, 1, 2, then the rest; with each user's training items masked,
    # every held-out item comes first
    assert r["popularity_recall@20"] == 1.0 and r["popularity_ndcg@20"] == 1.0


def _bench_module(name):
    import importlib

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_popularity_carve_partitions_and_favours_popular_items():
    """gowalla_splits.popularity_carve: the held-out share and the rest partition the pairs,
    it is seeded, exponent 0 is uniform and a positive exponent draws popular items' pairs
    more often than their share."""
    import torch

    carve = _bench_module("gowalla_splits").popularity_carve
    gen = torch.Generator().manual_seed(0)
    items = torch.cat([torch.zeros(900, dtype=torch.long),
                       torch.randint(1, 101, (900,), generator=gen)])
    train = torch.stack([torch.arange(1800) % 300, items])  # item 0 holds half of the 1,800 pairs
    rest, held = carve(train, 101, 0.25, 1.0, seed=3)
    assert held.shape[1] == 450 and rest.shape[1] == 1350
    pairs = lambda e: sorted(map(tuple, e.T.tolist()))  # noqa: E731
    assert pairs(torch.cat([rest, held], 1)) == pairs(train)
    assert torch.equal(held, carve(train, 101, 0.25, 1.0, seed=3)[1])
    # degree^1: a pair of item 0 (degree 900) is ~100x as likely as one of a degree-9 item
    assert (held[1] == 0).float().mean() > 0.9
    # degree^0: item 0's share of the draw is its share of the pairs, ~0.5
    uniform = carve(train, 101, 0.25, 0.0, seed=3)[1]
    assert 0.4 < (uniform[1] == 0).float().mean() < 0.6
    with pytest.raises(ValueError, match="frac"):
        carve(train, 101, 1.0, 0.0)


def test_reproduce_paper_val_popularity_needs_tune():
    """--val-popularity shapes the validation split, so without --tune it stops with a message
    before any data is read."""
    main = _bench_module("reproduce_paper").main
    with pytest.raises(SystemExit, match="use it with --tune"):
        main(["--val-popularity", "0.15"])
