"""Title search: case-, accent- and article-insensitive, year-aware, one readable error per failure."""
import pandas as pd
import pytest

from lightgcn_helpers.search import (AmbiguousTitleError, TitleIndex, TitleNotFoundError, normalize_title,
                                     resolve_titles, search_titles)

MOVIES = pd.DataFrame({
    "movieId": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "title": ["Matrix, The (1999)", "Matrix Reloaded, The (2003)", "Hamlet (1948)", "Hamlet (1990)",
              "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
              "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
              "Blade Runner (1982)", "Blade Runner 2049 (2017)", "2001: A Space Odyssey (1968)",
              "Ready Player One"],
    "genres": ["Action|Sci-Fi", "Action|Sci-Fi", "Drama", "Drama", "Comedy|Romance", "Fantasy",
               "Sci-Fi", "Sci-Fi", "Sci-Fi", "Action"],
})


def test_normalize_title_moves_the_article_and_reads_the_year():
    assert normalize_title("Matrix, The (1999)") == ("the matrix", 1999)
    assert normalize_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)") == (
        "the city of lost children", 1995)
    assert normalize_title("Godfather: Part II, The (1974)") == ("the godfather part ii", 1974)
    assert normalize_title("Ready Player One") == ("ready player one", None)


@pytest.mark.parametrize("query", ["matrix", "The Matrix", "MATRIX, THE", "the matrix (1999)", "Matrix 1999"])
def test_the_same_movie_whatever_the_spelling(query):
    assert TitleIndex(MOVIES).resolve(query) == 1


def test_accents_alternative_titles_and_numbers_in_titles():
    index = TitleIndex(MOVIES)
    assert index.resolve("amélie") == 5 and index.resolve("AMELIE") == 5
    assert index.resolve("cite des enfants") == 6  # the alternative title is searched too
    assert index.resolve("Blade Runner 2049") == 8  # 2049 is no year of a movie here: part of the title
    assert index.resolve("blade runner") == 7  # the exact title beats the longer one
    assert index.resolve("2001") == 9 and index.resolve("Ready Player One") == 10
    wall_e = TitleIndex(pd.DataFrame({"movieId": [11], "title": ["WALL·E (2008)"]}))
    assert wall_e.resolve("wall-e") == 11 and wall_e.resolve("Wall E") == 11  # "·" and "-" are both a space


def test_search_orders_exact_then_start_then_word_then_anywhere():
    assert search_titles(MOVIES, "matrix")["movieId"].tolist() == [1, 2]
    assert search_titles(MOVIES, "runner")["movieId"].tolist() == [7, 8]
    assert search_titles(MOVIES, "hamlet 1990")["title"].tolist() == ["Hamlet (1990)"]
    assert search_titles(MOVIES, "zzz").empty
    assert len(search_titles(MOVIES, "a", limit=3)) == 3


def test_popularity_orders_equally_good_matches_and_is_shown():
    found = search_titles(MOVIES, "hamlet", popularity={3: 5, 4: 50})
    assert found["movieId"].tolist() == [4, 3] and found["popularity"].tolist() == [50.0, 5.0]


def test_ambiguous_title_lists_the_candidates_and_asks_for_the_year():
    with pytest.raises(AmbiguousTitleError, match=r"'Hamlet' matches 2 movies: Hamlet \(1948\); Hamlet \(1990\)"
                                                  r" — add the year"):
        TitleIndex(MOVIES).resolve("Hamlet")
    assert resolve_titles(MOVIES, ["Hamlet (1990)", "hamlet 1948"]) == [4, 3]


def test_unknown_title_suggests_close_matches():
    with pytest.raises(TitleNotFoundError, match=r"no movie title matches 'Amelei'\. Did you mean: Amelie"):
        TitleIndex(MOVIES).resolve("Amelei")
    with pytest.raises(TitleNotFoundError, match="Try a shorter part"):
        TitleIndex(MOVIES).resolve("qqqqqq")
    with pytest.raises(TitleNotFoundError, match="empty title query"):
        TitleIndex(MOVIES).resolve("  ")


def test_errors_are_value_errors_and_columns_are_checked():
    assert issubclass(TitleNotFoundError, ValueError) and issubclass(AmbiguousTitleError, ValueError)
    with pytest.raises(ValueError, match="needs a 'title' column"):
        TitleIndex(MOVIES.rename(columns={"title": "name"}))
