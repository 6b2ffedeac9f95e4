import math
import os

import pytest
import torch

import lightgcn_helpers.env as env
from lightgcn_helpers.env import load_average, machine_info, median_seconds, time_calls, versions


class FakeClock:
    """``time.perf_counter`` replacement: the time moves only when a timed function advances it."""

    def __init__(self):
        self.now = 1000.0
        self.reads = []

    def __call__(self):
        self.reads.append(self.now)
        return self.now


def test_time_calls_warms_up_then_times_each_call(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(env.time, "perf_counter", clock)
    durations = iter([50.0, 60.0, 0.5, 2.0, 0.25, 8.0])  # two warm-up calls, then four timed ones
    calls = []

    def fn():
        calls.append(1)
        clock.now += next(durations)

    times = time_calls(fn, repeats=4, warmup=2)
    assert len(calls) == 6
    assert times == [0.5, 2.0, 0.25, 8.0]  # the warm-up calls (50 s, 60 s) are not measured
    assert len(clock.reads) == 8  # one start and one stop reading per timed call


def test_time_calls_waits_for_the_gpu_around_each_call(monkeypatch):
    clock, events = FakeClock(), []
    monkeypatch.setattr(env.time, "perf_counter", lambda: events.append("clock") or clock())
    monkeypatch.setattr(torch.cuda, "synchronize",
                        lambda device=None: events.append(f"sync {device}"))

    def fn():
        events.append("fn")
        clock.now += 3.0

    assert time_calls(fn, repeats=2, warmup=1, device="cuda:0") == [3.0, 3.0]
    timed_call = ["sync cuda:0", "clock", "fn", "sync cuda:0", "clock"]
    assert events == ["fn"] + timed_call * 2
    events.clear()
    time_calls(fn, repeats=1, warmup=0, device="cpu")
    assert events == ["clock", "fn", "clock"]  # no synchronisation on the CPU


def test_median_seconds_is_the_median_of_the_calls(monkeypatch):
    monkeypatch.setattr(env, "time_calls", lambda fn, repeats, warmup, device: [3.0, 1.0, 100.0])
    assert median_seconds(lambda: None, repeats=3) == pytest.approx(3.0)


def test_median_seconds_with_a_fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(env.time, "perf_counter", clock)
    durations = iter([99.0, 4.0, 1.0, 7.0, 2.0])  # warm-up, then 4 calls: median of 1, 2, 4, 7 is 3

    def fn():
        clock.now += next(durations)

    assert median_seconds(fn, repeats=4, warmup=1) == 3.0


def test_interact_shows_the_defaults_outside_a_live_notebook(monkeypatch):
    from lightgcn_helpers.env import interact, interactive

    monkeypatch.setenv("LIGHTGCN_QUIET", "1")
    assert not interactive()
    seen = []
    assert interact(lambda threshold=3.5, k=20: seen.append((threshold, k)) or "static",
                    threshold=(0.5, 5.0, 0.5), k=(5, 50)) == "static"
    assert seen == [(3.5, 20)]


def test_interact_passes_float_slider_values_on_their_step_grid(monkeypatch):
    """In a live notebook the FloatSlider's front end sends 3.4999999999999996 for 3.5 and
    1.9999999999999998 for 2.0 (float arithmetic): the function receives the grid values."""
    import ipywidgets

    made = []
    real = ipywidgets.interact

    def recording_interact(f, **controls):
        made.append(real(f, **controls))  # the real widget, displayed as text outside a kernel
        return made[-1]

    monkeypatch.setattr(env, "interactive", lambda: True)
    monkeypatch.setattr(ipywidgets, "interact", recording_interact)
    seen = []
    assert env.interact(lambda threshold=3.5, k=20: seen.append((threshold, k)),
                        threshold=(0.5, 5.0, 0.5), k=(5, 50)) is None
    slider, k_slider = made[0].widget.children[:2]
    assert isinstance(slider, ipywidgets.FloatSlider) and isinstance(k_slider, ipywidgets.IntSlider)
    for sent, received in [(3.4999999999999996, 3.5), (1.9999999999999998, 2.0), (0.5, 0.5),
                           (4.500000000000001, 4.5), (5.0, 5.0)]:
        slider.value = sent
        assert seen[-1] == (received, 20) and repr(seen[-1][0]) == repr(received)
    k_slider.value = 7
    assert seen[-1] == (5.0, 7)
    assert seen[0] == (3.5, 20)  # the first call, with the defaults


def test_machine_info_and_load_average(monkeypatch):
    info = machine_info("cpu")
    assert info["device"] == "cpu" and info["cpu_count"] == os.cpu_count() >= 1
    assert info["torch_threads"] == torch.get_num_threads() and info["torch"] == versions()["torch"]
    assert "gpu" not in info and isinstance(info["cpu_model"], str)
    monkeypatch.setattr(os, "getloadavg", lambda: (_ for _ in ()).throw(OSError("no load average")))
    assert load_average() is None and math.isnan(load_average(float("nan")))
    assert machine_info()["load_at_start"] is None and "device" not in machine_info()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 0.5))
    assert load_average() == 1.5 and machine_info()["load_at_start"] == 1.5


def test_start_notebook_sets_up_and_starts_the_clock(capsys):
    import re

    from lightgcn_helpers.env import notebook_run_time, start_notebook

    class Noise(UserWarning):
        pass

    device = start_notebook(3, device="cpu", ignore=(Noise,))
    assert device == torch.device("cpu")
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("x", Noise, stacklevel=2)  # silenced by start_notebook
    assert not caught
    warnings.filters[:] = [f for f in warnings.filters if f[2] is not Noise]
    assert torch.initial_seed() == 3
    line = capsys.readouterr().out
    assert line.startswith("device: cpu | python ") and "torch " in line
    assert re.fullmatch(r"This notebook ran in \d+ s", notebook_run_time())


def test_check_claims_prints_each_and_names_the_failures(capsys):
    env.check_claims({"a holds": True, "b holds": True})
    assert capsys.readouterr().out == "PASS a holds\nPASS b holds\n"
    with pytest.raises(AssertionError, match=r"1 claim\(s\).*\['b holds'\]"):
        env.check_claims({"a holds": True, "b holds": False})
    assert capsys.readouterr().out == "PASS a holds\nFAIL b holds\n"
