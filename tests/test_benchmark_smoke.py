"""Smoke test of benchmarks/run_benchmarks.py at --tiny size: it runs, prints the table and
writes its files, and the original-style reference agrees with the helpers. No timing is asserted."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

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
        if row["unit"] in ("s", "MB") and row["helpers"] is not None and row["original"] is not None:
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
    assert r["item_train_degree_median"] == 1 and r["item_train_degree_mean"] == 1.3  # degrees 1, 2, 1
    assert r["held_per_train_pair_median"] == 0.5  # one held-out pair per two training pairs
    # popularity ranks items 0, 1, 2, then the rest; with each user's training items masked,
    # every held-out item comes first
    assert r["popularity_recall@20"] == 1.0 and r["popularity_ndcg@20"] == 1.0
