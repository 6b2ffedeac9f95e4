"""Shared test fixtures."""
import pytest
import torch

from http_server import closed_port_url, server  # noqa: F401 (fixtures of test_data, test_datasets)


@pytest.fixture
def dense_norm():
    """``dense_norm(edges, num_users, num_items)``: D^-1/2 A D^-1/2 the textbook way, as a dense
    float64 matrix (fine for toy graphs) — the reference the sparse helpers are checked against."""
    def build(edges: torch.Tensor, num_users: int, num_items: int) -> torch.Tensor:
        n = num_users + num_items
        a = torch.zeros(n, n, dtype=torch.float64)
        for u, i in edges.t().tolist():
            a[u, num_users + i] = a[num_users + i, u] = 1.0
        deg = a.sum(1)
        d_inv_sqrt = torch.diag(torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg)))
        return d_inv_sqrt @ a @ d_inv_sqrt
    return build


def pytest_collection_modifyitems(config, items):
    """The browser test last: by then nbval has run notebook 07, whose trained models
    ``train_cached`` keeps, so the browser reaches 07's picker in seconds, not minutes."""
    items.sort(key=lambda item: "test_browser.py" in item.nodeid)   # stable: others keep order
