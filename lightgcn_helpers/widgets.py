"""A live "pick the movies you like → recommendations" widget (notebook 07).

:func:`pick_and_recommend` shows a search box and the matching titles, each with a tick box; the
ticked movies are your likes, and the recommendations below update at every tick — through
whatever ``recommend`` does with them (notebook 07: fold-in, no retraining). Outside a
live notebook (CI, ``LIGHTGCN_QUIET=1``, GitHub's stored outputs) it returns what ``recommend``
gives for the starting likes, so the cell shows the same table there, like
:func:`lightgcn_helpers.env.interact`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from .env import interactive
from .search import TitleIndex

__all__ = ["pick_and_recommend", "resolve_likes"]

EMPTY_MESSAGE = "Tick at least one movie you like (search for it above)."


def resolve_likes(titles: TitleIndex, liked: Sequence[int | str]) -> list[int]:
    """Likes given as ids and/or titles → ids (titles through :meth:`TitleIndex.resolve`), in
    order, each once."""
    ids = [x if not isinstance(x, str) else titles.resolve(x) for x in liked]
    return list(dict.fromkeys(int(x) for x in ids))


def pick_and_recommend(titles: TitleIndex, recommend: Callable[[list[int]], pd.DataFrame],
                       liked: Sequence[int | str] = (), limit: int = 30, rows: int = 10):
    """A search box, the matching titles with a tick box each (ticked: you like it), and
    ``recommend(ids)`` (ids: the ticked movies' ``titles.id_col`` values, in the order ticked)
    shown below, updated on every tick. ``liked``: the movies ticked at the start (ids and/or
    titles); ``limit``: matches listed per search, below your likes; ``rows``: the list's
    height in lines (it scrolls).

    In a live notebook it displays the widget and returns ``None``; everywhere else it returns
    ``recommend`` of the starting likes, which the cell then shows."""
    start = resolve_likes(titles, liked)
    if not interactive():
        if not start:
            raise ValueError("no starting likes: pass liked=[...] (titles or ids)")
        return recommend(start)
    import ipywidgets as widgets
    from IPython.display import display

    meta = titles.movies.set_index(titles.id_col)
    likes = (pd.Series(titles.popularity, index=meta.index) if titles.popularity is not None
             else None)
    shared = {i for ids in titles.same_title.values() for i in ids}

    def label(movie_id: int) -> str:
        text = str(meta.at[movie_id, titles.title_col])
        if movie_id in shared and "genres" in meta.columns:  # tell same-titled movies apart
            text += f" · {meta.at[movie_id, 'genres']}"
        if likes is not None:
            n = likes.at[movie_id]
            text += f" · {n:,.0f} like" + ("" if n == 1 else "s")
        return text

    query = widgets.Text(placeholder="part of a title, e.g. star wars", description="Search:",
                         layout=widgets.Layout(width="70%"))
    listing = widgets.VBox(layout=widgets.Layout(max_height=f"{1.9 * rows:.1f}em", width="70%",
                                                 overflow="auto"))
    clear = widgets.Button(description="clear selection", layout=widgets.Layout(width="auto"))
    status = widgets.Label()
    out = widgets.Output()
    boxes: list = []  # a pool of checkboxes, reused from search to search
    state = {"chosen": list(start), "shown": [], "busy": False}

    def on_tick(change) -> None:
        if state["busy"]:
            return
        movie_id = state["shown"][boxes.index(change["owner"])]
        chosen = [i for i in state["chosen"] if i != movie_id]
        state["chosen"] = chosen + [movie_id] if change["new"] else chosen
        show_recommendations()

    def show_list(found: Sequence[int]) -> None:
        chosen = state["chosen"]
        shown = chosen + [i for i in found if i not in set(chosen)]  # your likes stay on top
        while len(boxes) < len(shown):
            boxes.append(widgets.Checkbox(indent=False, layout=widgets.Layout(width="auto")))
            boxes[-1].observe(on_tick, names="value")
        state["busy"] = True  # ticks set here are not a reader's change
        try:
            for box, movie_id in zip(boxes, shown):
                box.description, box.value = label(movie_id), movie_id in chosen
        finally:
            state["busy"] = False
        state["shown"] = shown
        listing.children = boxes[:len(shown)]

    def show_recommendations() -> None:
        chosen = state["chosen"]
        status.value = f"{len(chosen)} selected" if chosen else ""
        out.clear_output(wait=True)
        with out:
            if not chosen:
                print(EMPTY_MESSAGE)
                return
            try:
                display(recommend(list(chosen)))
            except ValueError as err:  # e.g. a movie the model does not know
                print(f"{type(err).__name__}: {err}")

    def on_query(change) -> None:
        text = change["new"].strip()
        found = []
        if len(text) >= 2:
            try:
                found = titles.search(text, limit=limit)[titles.id_col].tolist()
            except ValueError:  # nothing searchable in the text, e.g. "--"
                found = []
        show_list(found)

    def on_clear(_) -> None:
        state["chosen"] = []
        show_list(state["shown"])
        show_recommendations()

    query.observe(on_query, names="value")
    clear.on_click(on_clear)
    show_list([])
    show_recommendations()
    display(widgets.VBox([query, listing, widgets.HBox([clear, status]), out]))
    return None
