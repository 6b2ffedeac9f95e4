"""Global settings every notebook starts with: seeds, device, versions, plot style —
and the one timing helper that the notebooks' timing tables and the benchmark share."""
from __future__ import annotations

import decimal
import os
import platform
import random
import statistics
import time
import warnings
from collections.abc import Callable
from importlib import metadata

import numpy as np
import torch

__all__ = ["seed_everything", "pick_device", "versions", "plot_style", "has_torch_sparse",
           "quiet_progress", "interactive", "interact", "time_calls", "median_seconds",
           "load_average", "machine_info", "start_notebook", "notebook_run_time", "check_claims"]

_PACKAGES = ("torch", "torch_geometric", "torch_sparse", "torch_scatter", "numpy", "pandas",
             "scikit-learn", "matplotlib")


def seed_everything(seed: int = 42) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a ``torch.Generator``
    seeded the same way, for code that wants its own random stream."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to use, chosen once per notebook: ``prefer`` if given (or the
    ``LIGHTGCN_DEVICE`` environment variable), else CUDA when available, else CPU."""
    choice = prefer or os.environ.get("LIGHTGCN_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def has_torch_sparse() -> bool:
    """True when the optional ``torch_sparse`` extension (``SparseTensor``) imports *and*
    PyTorch Geometric uses it (PyG decides once, at its own import: an extension installed
    after ``torch_geometric`` was imported is not used until the kernel restarts)."""
    try:
        import torch_sparse  # noqa: F401, I001  (first: a broken build fails here, before PyG)
        import torch_geometric.typing
    except Exception:  # ImportError, or an ABI mismatch raising OSError/RuntimeError
        return False
    return bool(torch_geometric.typing.WITH_TORCH_SPARSE)


def versions() -> dict[str, str]:
    """Python and key package versions (``'not installed'`` for missing ones)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average(default: float | None = None) -> float | None:
    """The 1-minute load average (``default`` where the platform has none): a benchmark
    records it at its start and end, since other work on the machine slows every timing."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return default


def machine_info(device: torch.device | str | None = None) -> dict:
    """What a benchmark record says about the machine: platform, CPU model and count, the
    threads PyTorch uses, ``OMP_WAIT_POLICY``, the load average now (``load_at_start``), the
    GPU when ``device`` is CUDA, and :func:`versions`."""
    cpu_model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = (line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
            cpu_model = next(names, cpu_model)
    except OSError:
        pass
    info = {"platform": platform.platform(), "cpu_model": cpu_model, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_at_start": load_average(), **versions()}
    if device is not None:
        device = torch.device(device)
        info["device"] = str(device)
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
    return info


def quiet_progress() -> bool:
    """True when progress bars should stay silent (CI, or ``LIGHTGCN_QUIET=1``)."""
    truthy = ("1", "true", "yes", "on")
    return any(os.environ.get(name, "").strip().lower() in truthy
               for name in ("CI", "LIGHTGCN_QUIET"))


def plot_style() -> None:
    """A readable matplotlib style for stored figures: 100 dpi, no text below 9 pt
    (titles 11, labels 10, ticks and legends 9), no top/right spines, a light grid."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "figure.figsize": (7, 3.5),
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    })


_CLOCK: dict[str, float] = {}


def start_notebook(seed: int, device: str | None = None, ignore: tuple = ()) -> torch.device:
    """What every notebook's set-up cell does: :func:`plot_style`, :func:`seed_everything`,
    the device chosen once (:func:`pick_device`), one line with the device and the package
    versions, and the clock that :func:`notebook_run_time` reads. ``ignore``: warning classes
    to silence for the rest of the session (e.g. ``graph.ColdStartWarning``, which notebook 02
    discusses). Returns the device."""
    for category in ignore:
        warnings.filterwarnings("ignore", category=category)
    plot_style()
    seed_everything(seed)
    chosen = pick_device(device)
    _CLOCK["start"] = time.perf_counter()
    print(f"device: {chosen} | " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    return chosen


def notebook_run_time() -> str:
    """``'This notebook ran in N s'``, since :func:`start_notebook` (the last cell prints it)."""
    seconds = time.perf_counter() - _CLOCK.get("start", time.perf_counter())
    return f"This notebook ran in {seconds:.0f} s"


def check_claims(claims: dict[str, bool]) -> None:
    """The last check of notebooks 05-08: print PASS or FAIL for each claim the notebook's prose
    makes, then raise one error naming every claim that no longer holds."""
    for claim, ok in claims.items():
        print("PASS" if ok else "FAIL", claim)
    failed = [claim for claim, ok in claims.items() if not ok]
    if failed:
        raise AssertionError(f"{len(failed)} claim(s) of this notebook no longer hold: {failed}. "
                             "Rerun the notebook from the top; if they still fail, the prose "
                             "that states them needs revising.")


def interactive() -> bool:
    """True in a live Jupyter session where widgets can work: ``ipywidgets`` imports, an
    IPython kernel is running, and this is not CI or a quiet run (:func:`quiet_progress`)."""
    if quiet_progress():
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _on_grid(value: float, start: float, step: float, stop: float) -> float:
    """``value`` snapped to the nearest point ``start + n·step`` in ``[start, stop]``, written
    with no more decimals than ``start`` and ``step``: ``_on_grid(3.4999999999999996, 0.5, 0.5,
    5.0)`` is exactly ``3.5``. A ``FloatSlider``'s front end computes its values in floating
    point and sends such near-misses, which a cell would otherwise print (and compare with
    ``==``)."""
    decimals = max(_decimals(start), _decimals(step))
    snapped = round(start + round((value - start) / step) * step, decimals)
    return min(max(snapped, start), stop)


def _decimals(x: float) -> int:
    """Decimal places of ``x`` as Python writes it (0.5: 1, 0.25: 2, 2.0: 0, 1e-05: 5)."""
    return max(0, -decimal.Decimal(repr(float(x))).normalize().as_tuple().exponent)


def interact(fn: Callable[..., object], **controls):
    """``fn`` with sliders in a live notebook, ``fn()`` with its defaults everywhere else.

    ``controls`` are ``ipywidgets.interact`` abbreviations, e.g. ``threshold=(0.5, 5.0, 0.5)``
    (min, max, step); the starting values are ``fn``'s defaults. A float slider's value
    reaches ``fn`` on its step grid (exactly 3.5, never 3.4999999999999996).
    In CI, in a quiet run (``LIGHTGCN_QUIET=1``) and on GitHub — whose stored output comes
    from a quiet run — the cell shows exactly what ``fn()`` shows with its defaults, so
    nothing depends on a widget."""
    if not interactive():
        return fn()
    import functools
    import inspect

    import ipywidgets

    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for name, spec in controls.items():
        if isinstance(spec, tuple) and name in defaults and len(spec) in (2, 3):
            lo, hi = spec[0], spec[1]
            step = spec[2] if len(spec) == 3 else None
            is_int = all(isinstance(v, int) for v in spec)
            cls = ipywidgets.IntSlider if is_int else ipywidgets.FloatSlider
            kw = {"min": lo, "max": hi, "value": defaults[name], "continuous_update": False}
            if step is not None:
                kw["step"] = step
            controls[name] = cls(**kw)
    floats = {name: c for name, c in controls.items() if isinstance(c, ipywidgets.FloatSlider)}

    @functools.wraps(fn)  # keeps fn's signature, which ipywidgets reads
    def fn_on_grid(*args, **kwargs):
        for name, slider in floats.items():
            if isinstance(kwargs.get(name), float):
                kwargs[name] = _on_grid(kwargs[name], slider.min, slider.step, slider.max)
        return fn(*args, **kwargs)

    ipywidgets.interact(fn_on_grid, **controls)
    return None


def time_calls(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
               device: torch.device | str | None = None) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls of ``fn()``, after ``warmup`` untimed
    calls (first-call overheads: allocation, caches, lazy initialisation). On a CUDA
    ``device`` the clock waits for the GPU (``torch.cuda.synchronize``) before each read,
    since kernels run asynchronously."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
                   device: torch.device | str | None = None) -> float:
    """Median of :func:`time_calls`: robust to the odd slow call on a busy machine."""
    return statistics.median(time_calls(fn, repeats, warmup, device))
