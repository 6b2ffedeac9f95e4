import torch

from lightgcn_helpers.baselines import ease_scores, popularity_scorer


def test_popularity():
    train = torch.tensor([[0, 1, 2, 2], [1, 1, 1, 0]])
    s = popularity_scorer(train, 3)(torch.tensor([0, 2]))
    assert s.tolist() == [[1, 3, 0], [1, 3, 0]]


def test_ease_woodbury_equals_closed_form():
    torch.manual_seed(0)
    x = (torch.rand(7, 9) < 0.4).double()
    lam = 3.0
    p = torch.linalg.inv(x.T @ x + lam * torch.eye(9, dtype=torch.float64))
    b = torch.eye(9, dtype=torch.float64) - p / torch.diag(p)
    assert torch.allclose(torch.diag(b), torch.zeros(9, dtype=torch.float64), atol=1e-12)
    edges = x.nonzero().T
    torch.testing.assert_close(ease_scores(edges, 7, 9, lam), (x @ b).float(), atol=1e-5, rtol=1e-5)
