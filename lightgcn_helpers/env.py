"""Global settings every notebook starts with: seeds, device, versions, plot style —
and the one timing helper that the notebooks' timing tables and the benchmark share."""
from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from importlib import metadata

import numpy as np
import torch

__all__ = ["seed_everything", "pick_device", "versions", "plot_style", "has_torch_sparse", "quiet_progress",
           "time_calls", "median_seconds"]

_PACKAGES = ("torch", "torch_geometric", "torch_sparse", "torch_scatter", "numpy", "pandas", "scikit-learn", "matplotlib")


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
        import torch_sparse  # noqa: F401
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


def quiet_progress() -> bool:
    """True when progress bars should stay silent (CI, or ``LIGHTGCN_QUIET=1``)."""
    truthy = ("1", "true", "yes", "on")
    return any(os.environ.get(name, "").strip().lower() in truthy for name in ("CI", "LIGHTGCN_QUIET"))


def plot_style() -> None:
    """A compact, readable matplotlib style: small stored PNGs, no top/right spines."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": 80,
        "savefig.dpi": 80,
        "figure.figsize": (7, 3.5),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    })


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
