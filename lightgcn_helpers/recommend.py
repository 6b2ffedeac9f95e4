"""Turn scores into readable recommendations: movie titles and genres per user."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from .graph import MovieLensGraph
from .metrics import topk_items

__all__ = ["recommend", "liked_movies"]


def _titles(graph: MovieLensGraph, movies: pd.DataFrame, item_idx) -> pd.DataFrame:
    raw = graph.item_encoder.inverse_transform(item_idx)
    table = movies.set_index("movieId").reindex(raw)[["title", "genres"]]
    return table.reset_index()


def recommend(score_fn: Callable[[Tensor], Tensor], graph: MovieLensGraph, movies: pd.DataFrame,
              raw_user_id, k: int = 10, exclude: Sequence[Tensor] | None = None) -> pd.DataFrame:
    """Top-``k`` movies for one user (raw ``userId``), excluding what they liked in
    ``exclude`` (default: the training split). Columns: rank, movieId, title, genres, held_out
    (whether the movie is one of the user's validation/test likes)."""
    user = int(graph.user_encoder.transform([raw_user_id])[0])
    exclude = [graph.split.train] if exclude is None else exclude
    top = topk_items(score_fn, torch.tensor([user]), k, graph.num_items, exclude)[0].cpu()
    table = _titles(graph, movies, top.numpy())
    held = torch.cat([graph.split.val, graph.split.test], 1)
    held_items = set(held[1, held[0] == user].tolist())
    table.insert(0, "rank", range(1, k + 1))
    table["held_out"] = [int(i) in held_items for i in top]
    return table


def liked_movies(graph: MovieLensGraph, movies: pd.DataFrame, raw_user_id, split: str = "train") -> pd.DataFrame:
    """The movies a user (raw ``userId``) liked in ``split`` ('train', 'val' or 'test')."""
    user = int(graph.user_encoder.transform([raw_user_id])[0])
    edges = getattr(graph.split, split)
    return _titles(graph, movies, edges[1, edges[0] == user].numpy())
