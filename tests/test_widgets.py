"""The live picker of notebook 07: the same table as the paste route outside a live notebook;
in one, ticks in the search results are the likes that the recommendations follow."""
import pandas as pd
import pytest

import lightgcn_helpers.widgets as picker
from lightgcn_helpers.search import TitleIndex

MOVIES = pd.DataFrame({
    "movieId": [260, 1196, 1210, 2628, 838, 26958, 1, 999],
    "title": ["Star Wars: Episode IV - A New Hope (1977)",
              "Star Wars: Episode V - The Empire Strikes Back (1980)",
              "Star Wars: Episode VI - Return of the Jedi (1983)",
              "Star Wars: Episode I - The Phantom Menace (1999)", "Emma (1996)", "Emma (1996)",
              "Toy Story (1995)", "Nobody Rated Me (2001)"],
    "genres": ["Sci-Fi", "Sci-Fi", "Sci-Fi", "Sci-Fi", "Comedy|Romance", "Romance", "Animation",
               "Drama"],
})
LIKES = {260: 220, 1196: 180, 1210: 165, 2628: 67, 838: 20, 26958: 1, 1: 200}


def fake_recommend(calls):
    def recommend(ids):
        calls.append(list(ids))
        if 999 in ids:
            raise ValueError("movieId [999] not in the graph")
        return pd.DataFrame({"rank": [1], "because you liked": [ids[0]]})
    return recommend


def test_outside_a_live_notebook_it_returns_the_starting_likes_table(monkeypatch):
    monkeypatch.setenv("LIGHTGCN_QUIET", "1")
    calls = []
    index = TitleIndex(MOVIES, popularity=LIKES)
    table = picker.pick_and_recommend(index, fake_recommend(calls), liked=["Toy Story", 260, 1])
    assert calls == [[1, 260]] and table["because you liked"].tolist() == [1]
    with pytest.raises(ValueError, match="no starting likes"):
        picker.pick_and_recommend(index, fake_recommend(calls))


@pytest.fixture
def live(monkeypatch):
    """The widget as a live notebook builds it: (root VBox, recommend calls, printed texts)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(picker, "interactive", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    calls = []
    index = TitleIndex(MOVIES, popularity=LIKES)
    assert picker.pick_and_recommend(index, fake_recommend(calls), liked=["Toy Story (1995)"],
                                     limit=3) is None
    root = shown[-1]
    return root, calls, shown


def test_ticks_are_the_likes_and_every_tick_updates_the_recommendations(live):
    root, calls, _ = live
    query, listing, buttons, _ = root.children
    clear, status = buttons.children
    assert calls == [[1]] and status.value == "1 selected"
    assert [b.description for b in listing.children] == ["Toy Story (1995) · 200 likes"]
    query.value = "star wars"
    labels = [b.description for b in listing.children]
    assert labels == ["Toy Story (1995) · 200 likes",  # your likes stay on top, then 3 matches
                      "Star Wars: Episode IV - A New Hope (1977) · 220 likes",
                      "Star Wars: Episode V - The Empire Strikes Back (1980) · 180 likes",
                      "Star Wars: Episode VI - Return of the Jedi (1983) · 165 likes"]
    assert [b.value for b in listing.children] == [True, False, False, False]
    assert calls == [[1]]  # searching recommends nothing new
    listing.children[2].value = True
    listing.children[1].value = True
    assert calls[-2:] == [[1, 1196], [1, 1196, 260]] and status.value == "3 selected"
    listing.children[0].value = False  # untick Toy Story
    assert calls[-1] == [1196, 260]
    query.value = "emma"  # same-titled movies are told apart by their genres
    assert [b.description for b in listing.children][2:] == [
        "Emma (1996) · Comedy|Romance · 20 likes", "Emma (1996) · Romance · 1 like"]
    n = len(calls)
    clear.click()
    assert len(calls) == n and status.value == ""  # nothing to recommend for no likes
    assert not any(b.value for b in listing.children)


def test_an_error_of_recommend_is_shown_not_raised(live, capsys):
    root, calls, _ = live
    query, listing = root.children[:2]
    query.value = "nobody rated"
    listing.children[1].value = True  # recommend raises: the message is printed, not raised
    assert calls[-1] == [1, 999]
    assert "ValueError: movieId [999] not in the graph" in capsys.readouterr().out
    query.value = "-"  # too short to search: only your likes are listed
    assert [b.description for b in listing.children] == ["Toy Story (1995) · 200 likes",
                                                         "Nobody Rated Me (2001) · 0 likes"]
