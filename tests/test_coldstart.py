"""User-level hold-out: which users, and which of their likes are revealed."""
import pytest
import torch

from lightgcn_helpers.coldstart import holdout_users, reveal_likes, rows_of

# user u (0..5) has 2 * u + 1 likes
EDGES = torch.tensor([[u for u in range(6) for _ in range(2 * u + 1)],
                      [i for u in range(6) for i in range(2 * u + 1)]])


def test_holdout_users_draws_a_share_of_the_eligible_users():
    held = holdout_users(EDGES, 6, share=0.5, min_likes=5, seed=0)  # users 2..5 are eligible
    assert held.numel() == 2 and bool((held >= 2).all()) and torch.equal(held,
                                                                         torch.sort(held).values)
    assert torch.equal(held, holdout_users(EDGES, 6, share=0.5, min_likes=5, seed=0))
    drawn = {tuple(holdout_users(EDGES, 6, 0.5, 5, seed=s).tolist()) for s in range(20)}
    assert len(drawn) > 1
    with pytest.raises(ValueError, match="no user is held out"):
        holdout_users(EDGES, 6, share=0.1, min_likes=11)
    with pytest.raises(ValueError, match="share must be between 0 and 1"):
        holdout_users(EDGES, 6, share=1.0)


def test_rows_of_renumbers_the_held_out_users():
    rows = rows_of(EDGES, torch.tensor([1, 4]))
    assert rows[0].tolist() == [0] * 3 + [1] * 9
    assert rows[1].tolist() == list(range(3)) + list(range(9))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_reveal_likes_shows_n_per_user_and_hides_the_rest(n):
    edges = EDGES[:, EDGES[0] >= 2]  # users with at least 5 likes
    shown, hidden = reveal_likes(edges, n, seed=3)
    assert torch.bincount(shown[0], minlength=6)[2:].tolist() == [n] * 4
    together = torch.cat([shown, hidden], 1)
    key = lambda e: sorted((e[0] * 100 + e[1]).tolist())  # noqa: E731
    assert key(together) == key(edges)  # a partition of the user's likes
    assert not set(key(shown)) & set(key(hidden))


def test_larger_n_reveals_a_superset_and_the_order_is_random():
    edges = EDGES[:, EDGES[0] >= 3]
    few, _ = reveal_likes(edges, 2, seed=0)
    many, _ = reveal_likes(edges, 5, seed=0)
    assert set((few[0] * 100 + few[1]).tolist()) <= set((many[0] * 100 + many[1]).tolist())
    firsts = {tuple(reveal_likes(edges, 2, seed=s)[0][1].tolist()) for s in range(10)}
    assert len(firsts) > 1  # not simply the first likes in the table


def test_reveal_needs_something_left_to_predict():
    with pytest.raises(ValueError, match="only 1 interaction"):
        reveal_likes(EDGES, 1)
    with pytest.raises(ValueError, match="n must be at least 1"):
        reveal_likes(EDGES, 0)
