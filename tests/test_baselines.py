import pytest
import torch

import lightgcn_helpers.baselines as baselines
from lightgcn_helpers.baselines import (
    EASE_MAX_BYTES,
    EaseMemoryError,
    ease_memory_bytes,
    ease_scorer,
    ease_scores,
    popularity_scorer,
)


def test_popularity():
    train = torch.tensor([[0, 1, 2, 2], [1, 1, 1, 0]])
    s = popularity_scorer(train, 3)(torch.tensor([0, 2]))
    assert s.tolist() == [[1, 3, 0], [1, 3, 0]]


def _textbook_ease(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Steck's closed form, item × item, with a linear solve (no torch.linalg.inv):
    P = (XᵀX + λI)⁻¹, B = I - P diag(1/diag(P)), S = X B."""
    n = x.shape[1]
    eye = torch.eye(n, dtype=torch.float64)
    p = torch.linalg.solve(x.T @ x + lam * eye, eye)
    b = eye - p / torch.diag(p)
    assert torch.allclose(torch.diag(b), torch.zeros(n, dtype=torch.float64), atol=1e-12)
    return x @ b


@pytest.mark.parametrize("users, items, inverted", [
    (7, 9, 7),    # fewer users than movies (ml-latest-small's shape): Woodbury, users × users
    (8, 8, 8),    # a tie: users × users
    (30, 9, 9),   # more users than movies (ml-1m's shape): the item × item form
])
def test_ease_inverts_the_smaller_gram_matrix_and_equals_the_closed_form(users, items, inverted,
                                                                         monkeypatch):
    g = torch.Generator().manual_seed(users * 100 + items)
    x = (torch.rand(users, items, generator=g) < 0.4).double()
    x[0] = 0  # a user without any interaction
    lam = 3.0
    expected = _textbook_ease(x, lam)
    shapes = []
    real_inv = torch.linalg.inv
    monkeypatch.setattr(torch.linalg, "inv", lambda a: shapes.append(tuple(a.shape)) or real_inv(a))
    edges = x.nonzero().T
    edges = torch.cat([edges, edges[:, :5]], 1)  # duplicated interactions count once
    got = ease_scores(edges, users, items, lam)
    assert shapes == [(inverted, inverted)]
    assert got.dtype == torch.float32 and got.shape == (users, items)
    torch.testing.assert_close(got, expected.float(), atol=1e-5, rtol=1e-5)
    scorer = ease_scorer(edges, users, items, lam)
    torch.testing.assert_close(scorer(torch.tensor([2, 1])), expected[[2, 1]].float(), atol=1e-5,
                               rtol=1e-5)


def test_ease_memory_estimate():
    # X and one float64 users × items product, float32 scores, three float64 n × n matrices (n =
    # min)
    assert ease_memory_bytes(3, 5) == 2 * 8 * 15 + 4 * 15 + 3 * 8 * 9
    assert ease_memory_bytes(5, 3) == ease_memory_bytes(3, 5)
    assert ease_memory_bytes(610, 9724) < 0.2e9  # ml-latest-small
    assert ease_memory_bytes(6040, 3706) < 1e9  # ml-1m


def test_ease_memory_limit(monkeypatch):
    computed = []
    class FakeFit(baselines.EaseFit):  # records the shapes that were fitted instead of fitting
        def __init__(self, rows, cols, u, i, lam):
            computed.append((u, i))
            self.shape = (u, i)

        def training_scores(self):
            return torch.zeros(self.shape, dtype=torch.float64)

    monkeypatch.setattr(baselines, "EaseFit", FakeFit)
    edges = torch.tensor([[0], [0]])
    # the MovieLens shapes pass the default limit ...
    for users, items in ((610, 9724), (6040, 3706)):
        ease_scores(edges, users, items)
    assert computed == [(610, 9724), (6040, 3706)]
    # ... a Gowalla-sized one (29,858 × 40,981) does not, before anything is allocated
    with pytest.raises(EaseMemoryError,
                       match=r"needs about 45\.9 GB .* max_bytes=8\.0 GB.*max_bytes=None") as err:
        ease_scores(edges, 29_858, 40_981)
    assert isinstance(err.value, MemoryError)
    assert len(computed) == 2
    with pytest.raises(EaseMemoryError, match=r"needs about 0\.0004 GB .* max_bytes=0\.0000 GB"):
        ease_scores(edges, 100, 100, max_bytes=1000)
    ease_scores(edges, 100, 100, max_bytes=None)  # no check
    assert computed[-1] == (100, 100) and EASE_MAX_BYTES == 8 * 10**9
