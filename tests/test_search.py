"""Title search: case-, accent- and article-insensitive, year-aware, one readable error per
failure; every title of movies.csv finds its own movie."""
import warnings

import pandas as pd
import pytest

from lightgcn_helpers.search import (
    AmbiguousTitleError,
    SameTitleWarning,
    TitleIndex,
    TitleNotFoundError,
    normalize_title,
)

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


@pytest.mark.parametrize("query", ["matrix", "The Matrix", "MATRIX, THE", "the matrix (1999)",
                                   "Matrix 1999"])
def test_the_same_movie_whatever_the_spelling(query):
    assert TitleIndex(MOVIES).resolve(query) == 1


def test_accents_alternative_titles_and_numbers_in_titles():
    index = TitleIndex(MOVIES)
    assert index.resolve("amélie") == 5 and index.resolve("AMELIE") == 5
    assert index.resolve("cite des enfants") == 6  # the alternative title is searched too
    assert index.resolve("Blade Runner 2049") == 8  # 2049: no movie's year here, part of the title
    assert index.resolve("blade runner") == 7  # the exact title beats the longer one
    assert index.resolve("2001") == 9 and index.resolve("Ready Player One") == 10
    wall_e = TitleIndex(pd.DataFrame({"movieId": [11], "title": ["WALL·E (2008)"]}))
    # "·" and "-" are both a space
    assert wall_e.resolve("wall-e") == 11 and wall_e.resolve("Wall E") == 11


def test_search_orders_exact_then_start_then_word_then_anywhere():
    index = TitleIndex(MOVIES)
    assert index.search("matrix")["movieId"].tolist() == [1, 2]
    assert index.search("runner")["movieId"].tolist() == [7, 8]
    assert index.search("hamlet 1990")["title"].tolist() == ["Hamlet (1990)"]
    assert index.search("zzz").empty
    assert len(index.search("a", limit=3)) == 3


def test_popularity_orders_equally_good_matches_and_is_shown():
    found = TitleIndex(MOVIES, popularity={3: 5, 4: 50}).search("hamlet")
    assert found["movieId"].tolist() == [4, 3] and found["popularity"].tolist() == [50.0, 5.0]


def test_ambiguous_title_lists_the_candidates_and_asks_for_the_year():
    with pytest.raises(AmbiguousTitleError, match=r"'Hamlet' matches 2 movies: Hamlet \(1948\); "
                                                  r"Hamlet \(1990\)"
                                                  r" — add the year"):
        TitleIndex(MOVIES).resolve("Hamlet")
    assert TitleIndex(MOVIES).resolve_many(["Hamlet (1990)", "hamlet 1948"]) == [4, 3]


def test_unknown_title_suggests_close_matches():
    with pytest.raises(TitleNotFoundError,
                       match=r"no movie title matches 'Amelei'\. Did you mean: Amelie"):
        TitleIndex(MOVIES).resolve("Amelei")
    with pytest.raises(TitleNotFoundError, match="Try a shorter part"):
        TitleIndex(MOVIES).resolve("qqqqqq")
    with pytest.raises(TitleNotFoundError, match="empty title query"):
        TitleIndex(MOVIES).resolve("  ")


def test_errors_are_value_errors_and_columns_are_checked():
    assert issubclass(TitleNotFoundError, ValueError)
    assert issubclass(AmbiguousTitleError, ValueError)
    with pytest.raises(ValueError, match="needs a 'title' column"):
        TitleIndex(MOVIES.rename(columns={"title": "name"}))


SAME = pd.DataFrame({"movieId": [838, 26958, 70, 71, 72],
                     "title": ["Emma (1996)", "Emma (1996)", "Emma (2009)", "Atalante, L' (1934)",
                               "Death Note: Desu nôto (2006–2007)"],
                     "genres": ["Comedy|Drama|Romance", "Romance", "Drama", "Drama", "Mystery"]})


def test_a_shared_title_resolves_to_the_most_liked_and_names_the_other():
    index = TitleIndex(SAME, popularity={838: 20, 26958: 1})
    assert index.same_title == {"Emma (1996)": [838, 26958]}
    for query in ("Emma (1996)", "emma 1996"):
        with pytest.warns(SameTitleWarning,
                          match=r"2 movies are titled 'Emma \(1996\)': took movieId 838 "
                                r"\(Comedy\|Drama\|Romance, 20 likes\), the most liked; "
                                r"the other: movieId 26958 \(Romance, 1 like\)"):
            assert index.resolve(query) == 838
    assert index.search("emma 1996")["movieId"].tolist() == [838, 26958]  # most liked first
    swapped = TitleIndex(SAME, popularity={838: 1, 26958: 20})
    assert swapped.same_title["Emma (1996)"] == [26958, 838]
    # no popularity: the smaller movieId, whatever the row order
    with pytest.warns(SameTitleWarning):
        assert TitleIndex(SAME.iloc[::-1]).resolve("Emma (1996)") == 838
    with pytest.raises(AmbiguousTitleError, match=r"'Emma' matches 3 movies"):
        index.resolve("Emma")  # different years: still a question for the reader


def test_moved_articles_and_year_ranges_resolve_by_their_own_text():
    index = TitleIndex(SAME)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a title held by one movie resolves without a warning
        assert index.resolve("Atalante, L' (1934)") == 71 and index.resolve("atalante, l'") == 71
        assert index.resolve("Death Note: Desu nôto (2006–2007)") == 72
        assert index.resolve("death note 2006-2007") == 72
        assert index.resolve("Death Note (2006)") == 72


@pytest.fixture(scope="module")
def real_movies():
    """ml-latest-small's movies.csv and likes, through the package's cache (as in
    test_real_data.py: CI pre-fills it, elsewhere it is downloaded once)."""
    from lightgcn_helpers.data import download_movielens, load_movielens

    download_movielens()
    ratings, movies = load_movielens()
    return movies, ratings.loc[ratings["rating"] >= 3.5, "movieId"].value_counts()


def test_every_title_of_movies_csv_resolves_to_a_movie_with_that_title(real_movies):
    movies, likes = real_movies
    index = TitleIndex(movies, popularity=likes)
    title_of = movies.set_index("movieId")["title"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = title_of.loc[index.resolve_many(movies["title"])].to_numpy()
    assert (found == movies["title"].to_numpy()).all()
    assert len(index.same_title) == 5 and all(len(ids) == 2 for ids in index.same_title.values())
    named = sorted(t for w in caught for t in index.same_title if f"titled {t!r}" in str(w.message))
    assert len(caught) == len(named) == 10 and named == sorted(2 * list(index.same_title))
    for ids in index.same_title.values():  # the one taken is the most liked
        assert likes.get(ids[0], 0) >= likes.get(ids[1], 0)
