"""GF-CF (lightgcn_helpers.baselines.GFCF) against its formula written out densely."""
import pytest
import torch

from lightgcn_helpers.baselines import GFCF
from lightgcn_helpers.metrics import evaluate_scores


def _toy(users=7, items=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(users, items, generator=g) < 0.4).double()
    x[0] = 0  # a user without a training interaction
    x[:, -1] = 0  # an item without one
    x[1, 0] = x[2, 1] = 1  # every other row and column non-empty
    edges = x.nonzero().T
    return x, torch.cat([edges, edges[:, :3]], 1)  # a duplicated pair counts once


def _dense_gfcf(x: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """s = X R̃ᵀR̃ + alpha X D_I^-1/2 V_k V_kᵀ D_I^1/2, R̃ = D_U^-1/2 X D_I^-1/2, all dense."""
    du, di = x.sum(1), x.sum(0)
    inv = lambda d: torch.where(d > 0, d.rsqrt(), 0.0)  # noqa: E731
    norm = inv(du)[:, None] * x * inv(di)[None, :]
    _, sigma, vh = torch.linalg.svd(norm)
    assert sigma[k - 1] - sigma[k] > 1e-6, "toy spectrum needs a gap at k"
    v = vh[:k].T
    low = torch.diag(inv(di)) @ v @ v.T @ torch.diag(di.sqrt())
    return x @ norm.T @ norm + alpha * x @ low


@pytest.mark.parametrize("k, alpha", [(2, 0.3), (4, 1.0), (0, 0.5), (3, 0.0)])
def test_gfcf_equals_the_dense_formula(k, alpha):
    x, edges = _toy()
    gf = GFCF(edges, x.shape[0], x.shape[1], k=k, alpha=alpha)
    users = torch.tensor([3, 0, 1, 6, 2])
    want = _dense_gfcf(x, k, alpha) if k else _dense_gfcf(x, 1, 0.0)  # k = 0: linear filter only
    got = gf(users)
    assert got.dtype == torch.float32 and got.shape == (5, x.shape[1])
    torch.testing.assert_close(got.double(), want[users], rtol=1e-5, atol=1e-6)
    assert torch.isfinite(got).all() and (got[:, -1] == 0).all()  # the item nobody liked
    assert (got[1] == 0).all()  # user 0 has no training row: nothing to filter


def test_gfcf_is_deterministic_and_a_score_fn():
    x, edges = _toy(users=12, items=10, seed=3)
    a = GFCF(edges, 12, 10, k=3)(torch.arange(12))
    b = GFCF(edges, 12, 10, k=3)(torch.arange(12))
    assert torch.equal(a, b)
    test = torch.tensor([[1, 2, 5], [8, 0, 3]])
    res = evaluate_scores(GFCF(edges, 12, 10, k=3), test, 10, [edges], ks=(3,), chunk_size=2)
    assert 0.0 <= res["recall@3"] <= 1.0 and res["users"] == 3


def test_gfcf_k_out_of_range_is_a_readable_error():
    x, edges = _toy()
    with pytest.raises(ValueError, match="k must be between 1 and 6"):
        GFCF(edges, 7, 9, k=7)


def test_with_filter_equals_a_fresh_fit():
    x, edges = _toy(users=12, items=10, seed=5)
    full = GFCF(edges, 12, 10, k=4, alpha=0.3)
    users = torch.arange(12)
    for k, alpha in [(2, 0.5), (4, 1.0), (3, 0.0)]:
        torch.testing.assert_close(full.with_filter(k, alpha)(users),
                                   GFCF(edges, 12, 10, k=k, alpha=alpha)(users), rtol=1e-5,
                                   atol=1e-6)
    assert full.k == 4 and full.alpha == 0.3  # the original is unchanged
    with pytest.raises(ValueError, match="fitted k=4"):
        full.with_filter(5, 0.3)
