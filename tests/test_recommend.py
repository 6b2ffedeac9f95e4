"""recommend / liked_items on a toy graph: titles when known, ids otherwise, training likes
masked."""
import pandas as pd
import pytest
import torch

from lightgcn_helpers.graph import EdgeSplit, IdEncoder, InteractionGraph
from lightgcn_helpers.recommend import describe_items, liked_items, recommend

# 2 users (raw ids 7, 9), 5 items (raw ids 100..104)
USERS = IdEncoder("userId").fit([7, 9])
ITEMS = IdEncoder("movieId").fit([100, 101, 102, 103, 104])
SPLIT = EdgeSplit(train=torch.tensor([[0, 0, 1], [0, 1, 4]]), val=torch.tensor([[0], [3]]),
                  test=torch.tensor([[1], [2]]))
META = pd.DataFrame({"movieId": [104, 100, 101, 102, 103], "title": ["E", "A", "B", "C", "D"],
                     "genres": ["x", "y", "z", "y", "x"]})
# scores: item index 0 best, then 1, 2, 3, 4 for user 0; reversed for user 1
SCORES = torch.tensor([[5.0, 4, 3, 2, 1], [1.0, 2, 3, 4, 5]])


def graph(items=None) -> InteractionGraph:
    edges = torch.cat([SPLIT.train, SPLIT.val, SPLIT.test], 1)
    return InteractionGraph(2, 5, USERS, ITEMS, edges, SPLIT, items=items)


def test_recommend_masks_training_likes_and_marks_held_out_ones():
    table = recommend(lambda u: SCORES[u], graph(), META, 7, k=3)
    # user 7 liked items 0, 1 in training: next best are 2, 3, 4 (raw 102, 103, 104)
    assert table["movieId"].tolist() == [102, 103, 104]
    assert table["title"].tolist() == ["C", "D", "E"] and table["genres"].tolist() == ["y", "x",
                                                                                       "x"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["held_out"].tolist() == [False, True, False]  # 103 is user 7's validation like


def test_recommend_without_metadata_shows_ids_and_uses_graph_items():
    bare = recommend(lambda u: SCORES[u], graph(), None, 9, k=2)
    assert list(bare.columns) == ["rank", "movieId", "held_out"]
    assert bare["movieId"].tolist() == [103, 102] and bare["held_out"].tolist() == [False, True]
    with_items = recommend(lambda u: SCORES[u], graph(items=META), None, 9, k=2)
    assert with_items["title"].tolist() == ["D", "C"]


def test_liked_items_and_describe_items():
    assert liked_items(graph(), META, 7)["title"].tolist() == ["A", "B"]
    assert liked_items(graph(), None, 9, "test")["movieId"].tolist() == [102]
    partial = META[META["movieId"] != 101]
    assert describe_items(graph(), [1, 0], partial)["title"].isna().tolist() == [True, False]
    with pytest.raises(ValueError, match="split must be"):
        liked_items(graph(), META, 7, "validation")
    with pytest.raises(ValueError, match="id column 'movieId'"):
        describe_items(graph(), [0], META.rename(columns={"movieId": "id"}))


def test_unknown_user_is_a_readable_error():
    with pytest.raises(KeyError, match="unknown userId 8"):
        recommend(lambda u: SCORES[u], graph(), META, 8)


# --- new users: recommend_new_user / encode_profile --------------------------------------------
from lightgcn_helpers.foldin import FoldIn  # noqa: E402
from lightgcn_helpers.graph import normalized_adjacency  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402
from lightgcn_helpers.recommend import encode_profile, recommend_new_user  # noqa: E402


def toy_fold(layers=2):
    torch.manual_seed(0)
    model = LightGCN(2, 5, 4, layers, init_std=0.5)
    g = graph(items=META)
    return FoldIn(model, normalized_adjacency(g.split.train, 2, 5), g.split.train), model


def test_encode_profile_takes_raw_ids_and_titles():
    g = graph(items=META)
    # sorted, repeats once
    assert encode_profile(g, None, [103, "a", "E", 103]).tolist() == [0, 3, 4]
    assert encode_profile(g, META, 101).tolist() == [1]


@pytest.mark.parametrize("method", ["optimise", "propagate"])
def test_recommend_new_user_masks_the_profile_and_explains(method):
    fold, _ = toy_fold()
    table = recommend_new_user(fold, graph(items=META), None, ["A", 102], k=3, method=method)
    assert list(table.columns) == ["rank", "movieId", "title", "genres", "score",
                                   "because you liked", "similarity"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert not set(table["movieId"]) & {100, 102}  # liked movies are never recommended
    assert set(table["because you liked"]) <= {"A", "C"}
    assert table["score"].is_monotonic_decreasing
    assert ((table["similarity"] >= -1 - 1e-6) & (table["similarity"] <= 1 + 1e-6)).all()


def test_recommend_new_user_agrees_with_the_fold_in_and_leaves_the_model_alone():
    fold, model = toy_fold()
    before = model.embedding.weight.detach().clone()
    table = recommend_new_user(fold, graph(items=META), None, [100, 104], k=3, method="propagate")
    emb = fold.propagate([[0, 4]])
    scores = (emb @ fold.item_emb.T)[0]
    scores[[0, 4]] = float("-inf")
    assert table["movieId"].tolist() == [100 + i for i in torch.topk(scores, 3).indices.tolist()]
    assert torch.equal(model.embedding.weight, before)


def test_recommend_new_user_bad_input_gives_one_readable_error_each():
    from lightgcn_helpers.search import TitleNotFoundError

    fold, _ = toy_fold()
    g = graph(items=META)
    with pytest.raises(TitleNotFoundError, match="no movie title matches 'Zorro'"):
        recommend_new_user(fold, g, None, ["Zorro"])
    with pytest.raises(ValueError, match="the profile is empty"):
        recommend_new_user(fold, g, None, [])
    with pytest.raises(ValueError, match=r"movieId \[999\] not in the graph"):
        recommend_new_user(fold, g, None, [100, 999])
    with pytest.raises(ValueError, match="contains all 5 items: nothing is left"):
        recommend_new_user(fold, g, None, [100, 101, 102, 103, 104])
    with pytest.raises(ValueError, match="titles need item metadata"):
        recommend_new_user(fold, graph(), None, ["A"])
    with pytest.raises(ValueError, match="method must be"):
        recommend_new_user(fold, g, None, [100], method="retrain")
