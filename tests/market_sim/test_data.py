"""Loaders of real match data: football-data CSVs (all header generations) and goal times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_sim import data
from market_sim.data import DataError

needs_data = pytest.mark.skipif(
    not data.DEFAULT_DATA_DIR.is_dir(),
    reason=f"real football-data CSVs not found at {data.DEFAULT_DATA_DIR}",
)
needs_goal_times = pytest.mark.skipif(
    not data.DEFAULT_GOAL_TIMES_DIR.is_dir(),
    reason=f"goal-time data not found at {data.DEFAULT_GOAL_TIMES_DIR}",
)

# A minimal file of the 2019-20+ generation (Time column, Avg and closing odds).
HEADER = (
    "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,HTHG,HTAG,HTR,HS,AS,HST,AST,HF,AF,HC,AC,"
    "HY,AY,HR,AR,PSH,PSD,PSA,AvgH,AvgD,AvgA,P>2.5,P<2.5,PSCH,PSCD,PSCA"
)
ROWS = [
    "E0,12/08/2022,20:00,Alpha,Beta,2,1,H,1,0,H,12,8,5,3,10,11,6,4,1,2,0,0,"
    "2.1,3.4,3.6,2.05,3.3,3.5,1.9,1.95,2.0,3.5,3.7",
    "E0,13/08/22,15:00,Gamma,Delta,0,0,D,0,0,D,9,14,2,6,12,9,3,7,2,1,0,1,"
    "3.0,3.2,2.5,2.9,3.1,2.45,2.1,1.8,3.1,3.2,2.4",
]


def write_league(
    root: Path,
    season: str = "2223",
    league: str = "E0",
    header: str = HEADER,
    rows: list[str] | None = None,
    newline: str = "\r\n",
    bom: bool = False,
) -> Path:
    """Write ``<root>/<season>/<league>.csv`` and return its path."""
    path = root / season / f"{league}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join([header, *(ROWS if rows is None else rows)]) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def replace_cell(row: str, column: str, value: str, header: str = HEADER) -> str:
    fields = row.split(",")
    fields[header.split(",").index(column)] = value
    return ",".join(fields)


def expect_error(match_parts: list[str], call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    message = str(info.value)
    for part in match_parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- real files


@needs_data
def test_old_generation_betbrain_file() -> None:
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["1213"])
    assert len(frame) == 380
    first = frame.iloc[0]
    assert first["date"] == pd.Timestamp("2012-08-18")
    assert (first["home_team"], first["away_team"]) == ("Arsenal", "Sunderland")
    assert (first["home_goals"], first["away_goals"]) == (0, 0)
    assert (first["home_shots"], first["away_shots"], first["home_corners"]) == (14, 3, 7)
    assert first["odds_pinnacle_home"] == pytest.approx(1.44)
    assert first["odds_b365_home"] == pytest.approx(1.4)
    assert first["odds_avg_home"] == pytest.approx(1.4)  # Betbrain BbAvH
    assert first["odds_avg_over25"] == pytest.approx(1.76)  # BbAv>2.5
    # Columns this generation lacks are NaN, not missing.
    assert frame["odds_pinnacle_close_home"].isna().all()
    assert frame["odds_pinnacle_over25"].isna().all()
    assert frame["date"].dt.year.isin([2012, 2013]).all()


@needs_data
def test_time_column_generation_with_closing_odds() -> None:
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E0", 1920)
    assert len(frame) == 380
    assert frame["season"].eq("1920").all()
    assert frame["odds_pinnacle_close_home"].notna().all()
    assert frame["odds_b365_close_over25"].notna().all()
    assert frame["odds_avg_home"].notna().all()
    first = frame.iloc[0]
    assert (first["home_team"], first["away_team"]) == ("Liverpool", "Norwich")
    assert first["date"] == pd.Timestamp("2019-08-09")
    # The COVID restart ran to late July 2020.
    assert frame["date"].max() == pd.Timestamp("2020-07-26")


@needs_data
def test_bom_and_betfair_generation() -> None:
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E0", "2024-25")
    assert len(frame) == 380
    assert frame["league"].eq("E0").all()
    assert frame["odds_betfair_exchange_home"].notna().mean() > 0.9
    assert frame["odds_pinnacle_close_under25"].notna().mean() > 0.98


@needs_data
def test_trailing_blank_row_and_cr_cr_lf_line_ends() -> None:
    path = data.DEFAULT_DATA_DIR / "1415" / "E0.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\r\n" in raw  # the quirks under test
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E0", "1415")
    assert len(frame) == 380
    assert frame["source_line"].max() == 381  # header is line 1; the blank row 382 skipped
    assert frame["home_team"].str.len().gt(0).all()


@needs_data
def test_lf_and_crlf_files_and_both_date_formats() -> None:
    lf = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["2021"])
    crlf = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["1617"])
    assert b"\r\n" not in (data.DEFAULT_DATA_DIR / "2021" / "E0.csv").read_bytes()
    assert b"\r\n" in (data.DEFAULT_DATA_DIR / "1617" / "E0.csv").read_bytes()
    assert len(lf) == len(crlf) == 380
    assert not lf["away_team"].str.contains("\r").any()
    two_digit = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["1617"])  # dd/mm/yy
    four_digit = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["1718"])  # dd/mm/yyyy
    assert two_digit["date"].min() == pd.Timestamp("2016-08-13")
    assert four_digit["date"].min() == pd.Timestamp("2017-08-11")


@needs_data
def test_several_seasons_tidy_sorted_and_typed() -> None:
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["1920", 1213, "2018-19"])
    assert list(frame.columns) == list(data.LEAGUE_FRAME_COLUMNS)
    assert len(frame) == 3 * 380
    assert frame["date"].is_monotonic_increasing
    assert list(frame["season"].unique()) == ["1213", "1819", "1920"]
    assert frame["date"].dtype == np.dtype("datetime64[ns]")
    assert frame["home_goals"].dtype == np.int64
    assert frame["home_shots"].dtype == np.float64
    # Stable: matches on one day keep their file order.
    for _, day in frame.groupby(["source_file", "date"]):
        assert day["source_line"].is_monotonic_increasing
    assert frame.index.equals(pd.RangeIndex(len(frame)))


@needs_data
def test_every_file_in_the_data_folder_loads() -> None:
    for league in data.available_leagues(data.DEFAULT_DATA_DIR):
        frame = data.load_league(data.DEFAULT_DATA_DIR, league)
        assert len(frame) > 0
        assert frame[["home_goals", "away_goals"]].ge(0).all().all()
        # Empty statistics cells (e.g. an awarded match) are NaN, and rare.
        assert frame["home_shots"].isna().mean() < 0.01
        # A missing price (football-data writes 0) is NaN, never <= 1.
        odds = frame.filter(like="odds_")
        assert not (odds <= 1).any().any()


@needs_data
def test_available_seasons_and_season_codes() -> None:
    seasons = data.available_seasons(data.DEFAULT_DATA_DIR, "SP1")
    assert seasons[0] == "1213" and "1516" not in seasons
    assert data.normalize_season(2223) == data.normalize_season("2022-23") == "2223"
    assert data.normalize_season("2022/2023") == "2223"
    assert data.normalize_season(9900) == "9900"
    with pytest.raises(DataError, match="consecutive"):
        data.normalize_season("2022")


# --------------------------------------------------------------------------- synthetic files


def test_synthetic_file_parses_both_date_formats_and_odds(tmp_path: Path) -> None:
    path = write_league(tmp_path, bom=True)
    frame = data.load_league(tmp_path, "E0", "2223")
    assert list(frame["date"]) == [pd.Timestamp("2022-08-12"), pd.Timestamp("2022-08-13")]
    assert list(frame["source_line"]) == [2, 3]
    assert frame["source_file"].eq(str(path)).all()
    assert frame.loc[1, "away_red"] == 1
    assert frame.loc[0, "odds_pinnacle_over25"] == pytest.approx(1.9)
    assert frame["odds_b365_home"].isna().all()


def test_blank_trailing_rows_are_skipped(tmp_path: Path) -> None:
    blank = "," * (HEADER.count(","))
    write_league(tmp_path, rows=[*ROWS, blank, blank, ""], newline="\n")
    assert len(data.load_league(tmp_path, "E0", "2223")) == 2


def test_missing_price_is_nan(tmp_path: Path) -> None:
    rows = [replace_cell(ROWS[0], "PSH", "0"), replace_cell(ROWS[1], "PSD", "")]
    write_league(tmp_path, rows=rows)
    frame = data.load_league(tmp_path, "E0", 2223)
    assert np.isnan(frame.loc[0, "odds_pinnacle_home"])
    assert np.isnan(frame.loc[1, "odds_pinnacle_draw"])


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("FTHG", "x", "non-negative integer"),
        ("FTAG", "1.5", "non-negative integer"),
        ("Date", "31/02/2023", "unparseable date"),
        ("Date", "2023.01.05", "unparseable date"),
        ("HS", "-3", "negative"),
        ("FTHG", "", "empty"),
        ("HomeTeam", "", "empty team"),
        ("PSH", "abc", "decimal odds"),
    ],
)
def test_malformed_value_names_file_line_and_column(
    tmp_path: Path, column: str, value: str, problem: str
) -> None:
    path = write_league(tmp_path, rows=[ROWS[0], replace_cell(ROWS[1], column, value)])
    expect_error(
        [str(path), "line 3", f"column {column!r}", problem],
        data.load_league,
        tmp_path,
        "E0",
        "2223",
    )


def test_missing_columns_name_the_column(tmp_path: Path) -> None:
    names = HEADER.split(",")
    for column in ("FTHG", "HomeTeam", "HS", "HTAG"):
        drop = names.index(column)
        header = ",".join(n for i, n in enumerate(names) if i != drop)
        rows = [",".join(f for i, f in enumerate(r.split(",")) if i != drop) for r in ROWS]
        path = write_league(tmp_path, header=header, rows=rows)
        expect_error(
            [str(path), "line 1", f"column {column!r}", "missing"],
            data.load_league,
            tmp_path,
            "E0",
            "2223",
        )


def test_results_without_statistics_with_require_stats_false(tmp_path: Path) -> None:
    header = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365H,B365D,B365A"
    write_league(
        tmp_path, season="2425", league="N1", header=header, rows=["N1,01/09/24,A,B,3,0,H,1.5,4,6"]
    )
    frame = data.load_league(tmp_path, "N1", "2425", require_stats=False)
    assert frame.loc[0, "home_goals"] == 3
    assert np.isnan(frame.loc[0, "home_shots"])
    assert frame.loc[0, "odds_b365_away"] == 6.0
    expect_error(["line 1", "'HTHG'"], data.load_league, tmp_path, "N1", "2425")


def test_unknown_league_lists_valid_codes(tmp_path: Path) -> None:
    write_league(tmp_path)
    message = expect_error(["'XX'", "E0 E1", "T1 G1"], data.load_league, tmp_path, "XX", "2223")
    assert "codes with files" in message
    # A code outside the list is accepted when it has files (e.g. Scottish Championship).
    write_league(tmp_path, league="SC1", rows=[ROWS[0].replace("E0,", "SC1,", 1)])
    assert data.load_league(tmp_path, "SC1", "2223")["league"].eq("SC1").all()


def test_missing_season_names_expected_path_and_existing_seasons(tmp_path: Path) -> None:
    write_league(tmp_path, season="2223")
    write_league(tmp_path, season="2324")
    expected = tmp_path / "1011" / "E0.csv"
    expect_error([str(expected), "2223 2324"], data.load_league, tmp_path, "E0", ["2223", "1011"])
    expect_error(["data directory not found"], data.load_league, tmp_path / "nope", "E0", "2223")


def test_row_with_date_but_no_result_is_an_error(tmp_path: Path) -> None:
    row = "E0,14/08/2022,15:00,Alpha,Gamma" + "," * (HEADER.count(",") - 4)
    path = write_league(tmp_path, rows=[*ROWS, row, "," * HEADER.count(",")])
    expect_error([str(path), "line 4", "'FTHG'", "empty"], data.load_league, tmp_path, "E0", 2223)


# --------------------------------------------------------------------------- goal times


@needs_goal_times
def test_club_goal_times_join_every_goal() -> None:
    goals = data.load_goal_times(data.DEFAULT_GOAL_TIMES_DIR)
    matches = data.load_goal_time_matches(data.DEFAULT_GOAL_TIMES_DIR)
    assert len(goals) == 20785 and len(matches) == 7842
    assert goals["minute"].between(1, 90).all()
    assert set(goals["side"]) == {"home", "away"}
    assert goals["match_id"].isin(matches["match_id"]).all()
    assert matches["consistent"].sum() == 7837
    # Stoppage-time goals are folded into 45 and 90 by the source.
    counts = goals["minute"].value_counts()
    assert counts[45] > 2 * counts[44] and counts[90] > 3 * counts[89]
    # One top and one second tier per country, labelled with football-data codes.
    per_season = matches.groupby(["league", "season"]).size().unstack()
    assert per_season.loc["E0"].tolist() == [380, 380, 380]
    assert per_season.loc["D2"].tolist() == [306, 306, 306]
    assert set(matches["league"]) == {"E0", "E1", "D1", "D2", "I1", "I2", "SC0"}
    home = goals[goals["side"] == "home"]
    assert (home["scoring_team"] == home["home_team"]).all()


@needs_goal_times
def test_international_goal_minutes() -> None:
    path = data.DEFAULT_INTERNATIONAL_GOALS
    goals = data.load_international_goal_minutes(path)
    assert len(goals) == 47914 - 254
    assert goals["minute"].min() >= 1 and goals["minute"].max() > 90
    assert set(goals["side"]) == {"home", "away"}
    assert goals["own_goal"].dtype == bool


def test_goal_time_join_failure_names_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "club_2012_2015_kinsman"
    folder.mkdir()
    (folder / "results.csv").write_text(
        "home_team,away_team,home_goals,away_goals,date\nA,B,1,0,2013-01-05\n"
    )
    (folder / "minutes.csv").write_text(
        "conceding_team,date,minute,scoring_team\nB,2013-01-05,10,A\nB,2013-01-06,20,A\n"
    )
    expect_error(["minutes.csv", "line 3", "'scoring_team'"], data.load_goal_times, tmp_path)
    (folder / "minutes.csv").write_text(
        "conceding_team,date,minute,scoring_team\nB,2013-01-05,93,A\n"
    )
    expect_error(["minutes.csv", "line 2", "'minute'"], data.load_goal_times, tmp_path)


def test_header_only_file_is_an_error(tmp_path: Path) -> None:
    path = write_league(tmp_path, rows=["," * HEADER.count(",")])
    expect_error([str(path), "no match rows"], data.load_league, tmp_path, "E0", "2223")
    assert data.available_seasons(tmp_path, "e0") == ["2223"]
