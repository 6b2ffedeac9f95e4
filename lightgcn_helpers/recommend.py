"""Turn scores into readable recommendations: item ids, and titles/genres when known.

Item metadata is optional. Pass a table with one row per raw item id (its id column
named like the graph's item column, e.g. ``movieId`` with ``title`` and ``genres``), or
let the functions use ``graph.items``; without any, the tables show raw item ids only.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from .graph import InteractionGraph
from .metrics import topk_items

__all__ = ["recommend", "liked_items", "liked_movies", "describe_items"]


def describe_items(graph: InteractionGraph, item_idx, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Item indices → a table of their raw ids and, when metadata is given (``items`` or
    ``graph.items``), its columns (``title``, ``genres``, ...); missing entries are NaN."""
    id_col = graph.item_encoder.name
    raw = graph.item_encoder.inverse_transform(item_idx)
    meta = items if items is not None else graph.items
    if meta is None:
        return pd.DataFrame({id_col: raw})
    if id_col not in meta.columns:
        raise ValueError(f"the item metadata needs an id column {id_col!r} (the graph's item column); "
                         f"it has {list(meta.columns)}")
    others = [c for c in meta.columns if c != id_col]
    return meta.drop_duplicates(id_col).set_index(id_col).reindex(raw)[others].rename_axis(id_col).reset_index()


def _user_index(graph: InteractionGraph, raw_user_id) -> int:
    try:
        return int(graph.user_encoder.transform([raw_user_id])[0])
    except KeyError:
        raise KeyError(f"unknown {graph.user_encoder.name} {raw_user_id!r}: it has no interaction in this graph "
                       f"(new users: see lightgcn_helpers.foldin)") from None


def recommend(score_fn: Callable[[Tensor], Tensor], graph: InteractionGraph, items: pd.DataFrame | None,
              raw_user_id, k: int = 10, exclude: Sequence[Tensor] | None = None) -> pd.DataFrame:
    """Top-``k`` items for one user (raw id), excluding what they liked in ``exclude``
    (default: the training split). Columns: ``rank``, the raw item id, the metadata
    columns (e.g. ``title``, ``genres``; ``items=None`` uses ``graph.items``, if any) and
    ``held_out`` (whether the item is one of the user's validation/test likes)."""
    user = _user_index(graph, raw_user_id)
    exclude = [graph.split.train] if exclude is None else exclude
    top = topk_items(score_fn, torch.tensor([user]), k, graph.num_items, exclude)[0].cpu()
    table = describe_items(graph, top.numpy(), items)
    held = torch.cat([graph.split.val, graph.split.test], 1)
    held_items = set(held[1, held[0] == user].tolist())
    table.insert(0, "rank", range(1, k + 1))
    table["held_out"] = [int(i) in held_items for i in top]
    return table


def liked_items(graph: InteractionGraph, items: pd.DataFrame | None, raw_user_id, split: str = "train") -> pd.DataFrame:
    """The items a user (raw id) liked in ``split`` ('train', 'val' or 'test')."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    user = _user_index(graph, raw_user_id)
    edges = getattr(graph.split, split)
    return describe_items(graph, edges[1, edges[0] == user].numpy(), items)


liked_movies = liked_items  # the MovieLens name the notebooks use
