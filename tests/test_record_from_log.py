"""benchmarks/record_from_log.py reads what reproduce_paper.py prints, and refuses other logs."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("record_from_log",
                                              ROOT / "benchmarks" / "record_from_log.py")
record_from_log = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record_from_log)

LOG = """InteractionGraph('gowalla': 3 users)
series-gowalla-mix recipe on cpu: TrainConfig(epochs=150, batch_size=65536, lr=0.03, \
l2_lambda=0.003, num_negatives=64, hard_negatives=1, lr_decay=0.99, eval_every=10, patience=8, \
k=20, seed=1, shared_negatives=True, mix_negatives=True)
epoch    1  loss 0.6947  test Recall@20 0.1228  NDCG@20 0.1052  train    33.9 s  eval   7.4 s  \
wall   0.7 min
epoch   10  loss 0.5946  test Recall@20 0.1716  NDCG@20 0.1455  train   272.6 s  eval  26.0 s  \
wall   5.3 min
"""


def test_parse_log_reads_config_and_every_evaluation():
    run = record_from_log.parse_log(LOG)
    assert run["config"]["seed"] == 1 and run["config"]["mix_negatives"] is True
    assert [t["epoch"] for t in run["trajectory"]] == [1, 10]
    assert run["trajectory"][1]["ndcg@20"] == 0.1455
    assert run["trajectory"][1]["wall_seconds"] == pytest.approx(318.0)


def test_main_writes_a_partial_record(tmp_path):
    log, out = tmp_path / "run.log", tmp_path / "rec.json"
    log.write_text(LOG)
    rec = record_from_log.main([str(log), "--command", "python x", "--reason", "stopped",
                                "--out", str(out)])
    assert rec["partial"]["stopped_after_epoch"] == 10 and rec["final"]["recall@20"] == 0.1716
    assert out.exists()


def test_a_log_of_another_recipe_is_refused(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(LOG.replace("lr=0.03", "lr=0.5"))
    with pytest.raises(SystemExit, match="not today's"):
        record_from_log.main([str(log), "--command", "x", "--reason", "y",
                              "--out", str(tmp_path / "r.json")])
