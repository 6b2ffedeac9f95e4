import pytest

from lightgcn_helpers.env import median_seconds, time_calls


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    times = time_calls(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and len(times) == 4
    assert all(t >= 0 for t in times)


def test_median_seconds_is_the_median_of_the_calls(monkeypatch):
    import lightgcn_helpers.env as env

    monkeypatch.setattr(env, "time_calls", lambda fn, repeats, warmup, device: [3.0, 1.0, 100.0])
    assert median_seconds(lambda: None, repeats=3) == pytest.approx(3.0)
