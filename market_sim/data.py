"""Loaders for the real match data used to calibrate the simulator.

Three sources, each returned as one tidy ``pandas.DataFrame``:

- ``load_league``: football-data.co.uk result/statistics/odds CSVs laid out as
  ``<data_dir>/<season>/<league>.csv`` (season code ``YYZZ``, e.g. ``2223`` = 2022-23).
- ``load_goal_times`` / ``load_goal_time_matches``: minute of every goal in club matches
  (Kinsman 2012-2015: England, Germany, Italy, Scotland), joined to the match table.
- ``load_international_goal_minutes``: minute of every goal in men's internationals.

football-data files come in three header generations (2012-13 … 2018-19 with Betbrain
aggregates; 2019-20 on with ``Time``, ``Max``/``Avg`` and closing odds; 2024-25 on with
Betfair exchange columns), with or without a UTF-8 BOM, with LF, CRLF or CR CR LF line
ends, with ``dd/mm/yy`` or ``dd/mm/yyyy`` dates and sometimes a trailing row of bare
commas. Columns are always looked up by name. Every error is a ``DataError`` naming the
file, the CSV line (1-based, header = line 1; a ``\\r\\r\\n`` counts as one line break)
and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Repository root (the folder holding ``market_sim/``).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shared data folder next to the repository (``../shared/data``).
DEFAULT_SHARED_DATA_DIR = (REPO_ROOT / ".." / "shared" / "data").resolve()
#: football-data.co.uk CSVs, ``<season>/<league>.csv``.
DEFAULT_DATA_DIR = DEFAULT_SHARED_DATA_DIR / "football-data"
#: Goal-minute data (``club_2012_2015_kinsman/``, ``international_results/``).
DEFAULT_GOAL_TIMES_DIR = DEFAULT_SHARED_DATA_DIR / "goal-times"
#: Goal minutes of men's internationals (martj42/international_results).
DEFAULT_INTERNATIONAL_GOALS = DEFAULT_GOAL_TIMES_DIR / "international_results" / "goalscorers.csv"

#: football-data.co.uk division codes of the main-format files. Any other code is
#: accepted too when ``data_dir`` holds files for it.
LEAGUE_CODES: tuple[str, ...] = (
    "E0", "E1", "E2", "E3", "SC0", "SP1", "SP2", "D1", "D2",
    "I1", "I2", "F1", "F2", "N1", "B1", "P1", "T1", "G1",
)  # fmt: skip

#: Canonical name -> accepted header names (first present wins). The aliases cover
#: old files (``HT``/``AT``) and football-data's "extra leagues" format (``Home``, ``HG``).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("Date",),
    "home_team": ("HomeTeam", "HT", "Home"),
    "away_team": ("AwayTeam", "AT", "Away"),
    "home_goals": ("FTHG", "HG"),
    "away_goals": ("FTAG", "AG"),
}

#: Event counts: canonical name -> football-data header. Required unless
#: ``require_stats=False``; an empty cell is NaN (e.g. an awarded match has no stats).
STAT_COLUMNS: dict[str, str] = {
    "ht_home_goals": "HTHG",
    "ht_away_goals": "HTAG",
    "home_shots": "HS",
    "away_shots": "AS",
    "home_shots_on_target": "HST",
    "away_shots_on_target": "AST",
    "home_corners": "HC",
    "away_corners": "AC",
    "home_fouls": "HF",
    "away_fouls": "AF",
    "home_yellow": "HY",
    "away_yellow": "AY",
    "home_red": "HR",
    "away_red": "AR",
}


def _odds_block(prefix: str, sources: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Expand ``{"H": (...), ...}`` into ``{"<prefix>_home": (...), ...}``."""
    suffix = {"H": "home", "D": "draw", "A": "away", ">": "over25", "<": "under25"}
    return {f"{prefix}_{suffix[key]}": names for key, names in sources.items()}


def _one_x_two(*stems: str) -> dict[str, tuple[str, ...]]:
    return {k: tuple(f"{stem}{k}" for stem in stems) for k in ("H", "D", "A")}


def _over_under(*stems: str) -> dict[str, tuple[str, ...]]:
    return {k: tuple(f"{stem}{k}2.5" for stem in stems) for k in (">", "<")}


#: Decimal odds: canonical name -> accepted headers (first present wins). Non-``close``
#: odds are football-data's pre-match snapshot (Fri/Tue afternoon), not opening prices.
#: ``Bb…`` are the Betbrain aggregates of 2012-13 … 2018-19 files.
ODDS_COLUMNS: dict[str, tuple[str, ...]] = {
    **_odds_block("odds_pinnacle", _one_x_two("PS", "P")),
    **_odds_block("odds_b365", _one_x_two("B365")),
    **_odds_block("odds_avg", _one_x_two("Avg", "BbAv")),
    **_odds_block("odds_max", _one_x_two("Max", "BbMx")),
    **_odds_block("odds_betfair_exchange", _one_x_two("BFE")),
    **_odds_block("odds_pinnacle_close", _one_x_two("PSC", "PC")),
    **_odds_block("odds_b365_close", _one_x_two("B365C")),
    **_odds_block("odds_avg_close", _one_x_two("AvgC")),
    **_odds_block("odds_max_close", _one_x_two("MaxC")),
    **_odds_block("odds_betfair_exchange_close", _one_x_two("BFEC")),
    **_odds_block("odds_pinnacle", _over_under("P")),
    **_odds_block("odds_b365", _over_under("B365")),
    **_odds_block("odds_avg", _over_under("Avg", "BbAv")),
    **_odds_block("odds_max", _over_under("Max", "BbMx")),
    **_odds_block("odds_betfair_exchange", _over_under("BFE")),
    **_odds_block("odds_pinnacle_close", _over_under("PC")),
    **_odds_block("odds_b365_close", _over_under("B365C")),
    **_odds_block("odds_avg_close", _over_under("AvgC")),
    **_odds_block("odds_max_close", _over_under("MaxC")),
}

#: Column order of ``load_league``'s frame.
LEAGUE_FRAME_COLUMNS: tuple[str, ...] = (
    "season",
    "league",
    "date",
    "home_team",
    "away_team",
    "home_goals",
    "away_goals",
    *STAT_COLUMNS,
    *ODDS_COLUMNS,
    "source_file",
    "source_line",
)


class DataError(ValueError):
    """Bad input data: the message names the file, the CSV line and the column."""


def _where(path: Path | str, line: int | None = None, column: str | None = None) -> str:
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}" + (" (header)" if line == 1 else ""))
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- seasons


def normalize_season(season: str | int) -> str:
    """Return the football-data season code ``YYZZ`` for ``2223``, ``"2223"``, ``"2022-23"``.

    Also accepts ``"2022/23"``, ``"2022-2023"``. Raises ``DataError`` otherwise.
    """
    text = str(season).strip()
    if isinstance(season, int | np.integer) and not isinstance(season, bool):
        if not 0 <= int(season) < 10000:
            raise DataError(f"season {season!r}: expected a football-data code like '2223'")
        text = f"{int(season):04d}"
    long_form = re.fullmatch(r"(\d{4})\s*[-/_]\s*(\d{2}|\d{4})", text)
    if long_form:
        start, end = int(long_form.group(1)), int(long_form.group(2)[-2:])
        code = f"{start % 100:02d}{end:02d}"
    elif re.fullmatch(r"\d{4}", text):
        code = text
    else:
        raise DataError(
            f"season {season!r}: expected a football-data code like '2223' or '2022-23'"
        )
    if (int(code[:2]) + 1) % 100 != int(code[2:]):
        raise DataError(
            f"season {season!r}: '{code}' is not two consecutive years "
            "(football-data codes are YYZZ with ZZ = YY + 1, e.g. '2223' for 2022-23)"
        )
    return code


def season_start_year(season: str) -> int:
    """Calendar year in which season ``YYZZ`` starts (``"9900"`` -> 1999, ``"2223"`` -> 2022)."""
    yy = int(season[:2])
    return (1900 if yy >= 50 else 2000) + yy


def _season_of_date(date: pd.Timestamp) -> str:
    start = date.year if date.month >= 7 else date.year - 1
    return f"{start % 100:02d}{(start + 1) % 100:02d}"


def _normalize_league(league: str) -> str:
    code = str(league).strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{1,8}", code):
        raise DataError(
            f"league {league!r}: expected a football-data division code, one of "
            + " ".join(LEAGUE_CODES)
        )
    return code


def _require_dir(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found")


def available_seasons(data_dir: Path | str = DEFAULT_DATA_DIR, league: str = "E0") -> list[str]:
    """Season codes (``YYZZ``, chronological) with a ``<season>/<league>.csv`` in ``data_dir``."""
    data_dir = Path(data_dir)
    _require_dir(data_dir)
    code = _normalize_league(league)
    seasons = [
        child.name
        for child in data_dir.iterdir()
        if child.is_dir()
        and re.fullmatch(r"\d{4}", child.name)
        and (int(child.name[:2]) + 1) % 100 == int(child.name[2:])
        and (child / f"{code}.csv").is_file()
    ]
    return sorted(seasons, key=season_start_year)


def available_leagues(data_dir: Path | str = DEFAULT_DATA_DIR) -> list[str]:
    """League codes that have at least one ``<season>/<league>.csv`` in ``data_dir``."""
    data_dir = Path(data_dir)
    _require_dir(data_dir)
    return sorted({p.stem for p in data_dir.glob("[0-9][0-9][0-9][0-9]/*.csv")})


# --------------------------------------------------------------------------- parsing


def _read_lines(path: Path) -> list[str]:
    """File lines without terminators; BOM dropped; LF, CRLF, CR CR LF or CR line ends."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older downloads may be Windows-1252 / Latin-1 (accented referee names).
        text = raw.decode("latin-1")
    return re.split(r"\r*\n|\r", text)


def _split(line: str) -> list[str]:
    return [field.strip() for field in next(csv.reader([line]))]


_DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d")


def _parse_date(value: str, where: str) -> dt.date:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise DataError(f"{where}: unparseable date {value!r} (expected dd/mm/yy or dd/mm/yyyy)")


def _parse_count(value: str, where: str, *, required: bool) -> float:
    """Non-negative integer count; empty -> NaN unless required."""
    if value == "":
        if required:
            raise DataError(f"{where}: empty value in a required column")
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: expected a non-negative integer, got {value!r}") from None
    if not math.isfinite(number) or number != round(number):
        raise DataError(f"{where}: expected a non-negative integer, got {value!r}")
    if number < 0:
        raise DataError(f"{where}: negative count {value!r}")
    return number


def _parse_odds(value: str, where: str) -> float:
    """Decimal odds; empty or <= 1 (football-data writes 0 for a missing price) -> NaN."""
    if value == "":
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: expected decimal odds, got {value!r}") from None
    if not math.isfinite(number) or number <= 1.0:
        return math.nan
    return number


def _resolve(header: dict[str, int], names: Iterable[str]) -> str | None:
    for name in names:
        if name in header:
            return name
    return None


def read_football_data_csv(
    path: Path | str, *, league: str = "", season: str = "", require_stats: bool = True
) -> pd.DataFrame:
    """Parse one football-data.co.uk CSV into the tidy frame of ``load_league`` (file order).

    ``league``/``season`` fill the ``league``/``season`` columns (default: taken from
    the ``Div`` column and the parent folder name).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    lines = _read_lines(path)
    if not lines or not lines[0].strip(", \t"):
        raise DataError(f"{_where(path, 1)}: empty file or empty header")
    names = _split(lines[0])
    header: dict[str, int] = {}
    for index, name in enumerate(names):
        if name and name not in header:
            header[name] = index

    required: dict[str, str] = {}
    for canonical, candidates in REQUIRED_COLUMNS.items():
        found = _resolve(header, candidates)
        if found is None:
            raise DataError(
                f"{_where(path, 1, candidates[0])}: missing required column "
                f"(accepted names: {', '.join(candidates)}); header has {len(header)} columns"
            )
        required[canonical] = found
    stats: dict[str, str] = {}
    for canonical, name in STAT_COLUMNS.items():
        if name in header:
            stats[canonical] = name
        elif require_stats:
            raise DataError(
                f"{_where(path, 1, name)}: missing event-statistics column "
                "(pass require_stats=False to load results without statistics)"
            )
    odds: dict[str, str] = {}
    for canonical, candidates in ODDS_COLUMNS.items():
        found = _resolve(header, candidates)
        if found is not None:
            odds[canonical] = found

    season_code = season or (path.parent.name if re.fullmatch(r"\d{4}", path.parent.name) else "")
    records: dict[str, list[object]] = {
        name: [] for name in LEAGUE_FRAME_COLUMNS if name not in ("season", "league")
    }
    leagues: list[str] = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip(", \t"):
            continue  # blank or all-commas row (football-data pads some files with one)
        fields = _split(line)
        if len(fields) < len(names):
            fields += [""] * (len(names) - len(fields))

        def cell(column: str, fields: list[str] = fields) -> str:
            return fields[header[column]]

        def at(column: str, line_number: int = line_number) -> str:
            return _where(path, line_number, column)

        date_value = cell(required["date"])
        if date_value == "":
            raise DataError(f"{at(required['date'])}: empty date in a non-blank row")
        records["date"].append(_parse_date(date_value, at(required["date"])))
        for side in ("home_team", "away_team"):
            team = cell(required[side])
            if team == "":
                raise DataError(f"{at(required[side])}: empty team name")
            records[side].append(team)
        for side in ("home_goals", "away_goals"):
            records[side].append(
                int(_parse_count(cell(required[side]), at(required[side]), required=True))
            )
        for canonical in STAT_COLUMNS:
            source = stats.get(canonical)
            records[canonical].append(
                math.nan
                if source is None
                else _parse_count(cell(source), at(source), required=False)
            )
        for canonical in ODDS_COLUMNS:
            source = odds.get(canonical)
            records[canonical].append(
                math.nan if source is None else _parse_odds(cell(source), at(source))
            )
        records["source_file"].append(str(path))
        records["source_line"].append(line_number)
        div = cell("Div") if "Div" in header else ""
        leagues.append(league or div or path.stem)

    if not records["date"]:
        raise DataError(f"{_where(path, 2)}: no match rows after the header")
    frame = pd.DataFrame(records)
    frame.insert(0, "league", pd.Series(leagues, dtype=object).astype(str))
    frame.insert(0, "season", season_code)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    for side in ("home_goals", "away_goals", "source_line"):
        frame[side] = frame[side].astype(np.int64)
    for canonical in (*STAT_COLUMNS, *ODDS_COLUMNS):
        frame[canonical] = frame[canonical].astype(np.float64)
    return frame[list(LEAGUE_FRAME_COLUMNS)]


def load_league(
    data_dir: Path | str = DEFAULT_DATA_DIR,
    league: str = "E0",
    seasons: Sequence[str | int] | str | int | None = None,
    *,
    require_stats: bool = True,
) -> pd.DataFrame:
    """Load one league's seasons into a tidy frame, one row per match, sorted by date.

    ``seasons``: codes like ``"2223"``/``2223``/``"2022-23"``; one or many; ``None`` = all
    seasons with a file. Columns (``LEAGUE_FRAME_COLUMNS``): ``season`` (str ``YYZZ``),
    ``league``, ``date`` (datetime64, day), team names, ``home_goals``/``away_goals``
    (int64), event counts (float64 per match; NaN where the cell is empty or, with
    ``require_stats=False``, the column is absent), decimal odds (float64; NaN where the
    file lacks the column or the price), ``source_file``, ``source_line`` (1-based).
    Rows with equal dates keep file order (stable sort).
    """
    data_dir = Path(data_dir)
    _require_dir(data_dir)
    code = _normalize_league(league)
    present = available_seasons(data_dir, code)
    if code not in LEAGUE_CODES and not present:
        raise DataError(
            f"unknown league code {league!r}: no file {data_dir}/<season>/{code}.csv; "
            f"valid codes: {' '.join(LEAGUE_CODES)}; "
            f"codes with files in {data_dir}: {' '.join(available_leagues(data_dir)) or 'none'}"
        )
    if seasons is None:
        wanted = present
        if not wanted:
            raise DataError(
                f"no files for league {code!r}: expected {data_dir}/<season>/{code}.csv"
            )
    else:
        items = [seasons] if isinstance(seasons, str | int | np.integer) else list(seasons)
        if not items:
            raise DataError("seasons: expected at least one season code")
        wanted = list(dict.fromkeys(normalize_season(item) for item in items))
    frames = []
    for season in sorted(wanted, key=season_start_year):
        path = data_dir / season / f"{code}.csv"
        if not path.is_file():
            raise DataError(
                f"{path}: no file for league {code!r} season {season!r}; "
                f"seasons with {code} in {data_dir}: {' '.join(present) or 'none'}"
            )
        frames.append(
            read_football_data_csv(path, league=code, season=season, require_stats=require_stats)
        )
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values("date", kind="mergesort").reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------- goal times

#: Top-tier anchor team -> (football-data code of its league, code of the second tier).
#: Used to label the Kinsman matches, whose file has no league column.
_KINSMAN_ANCHORS: dict[str, tuple[str, str]] = {
    "Arsenal": ("E0", "E1"),
    "Bayern Munich": ("D1", "D2"),
    "Juventus": ("I1", "I2"),
    "Celtic": ("SC0", "SC1"),
}


def _components(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Union-find: team -> representative of its connected component of fixtures."""
    parent: dict[str, str] = {}

    def find(team: str) -> str:
        parent.setdefault(team, team)
        while parent[team] != team:
            parent[team] = parent[parent[team]]
            team = parent[team]
        return team

    for home, away in pairs:
        parent[find(home)] = find(away)
    return {team: find(team) for team in parent}


def _label_kinsman_leagues(matches: pd.DataFrame) -> pd.Series:
    """football-data league code per match from the fixture graph (``"unknown"`` if none)."""
    pairs = list(zip(matches["home_team"], matches["away_team"], strict=True))
    country = _components(pairs)  # all seasons: promotion links the tiers of a country
    country_codes = {
        country[team]: codes for team, codes in _KINSMAN_ANCHORS.items() if team in country
    }
    labels = pd.Series("unknown", index=matches.index, dtype=object)
    for _, group in matches.groupby("season", sort=False):
        season_pairs = list(zip(group["home_team"], group["away_team"], strict=True))
        division = _components(season_pairs)  # one season: each division is closed
        top = {division[team] for team in _KINSMAN_ANCHORS if team in division}
        for index, home in zip(group.index, group["home_team"], strict=True):
            codes = country_codes.get(country[home])
            if codes is not None:
                labels[index] = codes[0] if division[home] in top else codes[1]
    return labels.astype(str)


def _read_plain_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            raise DataError(f"{_where(path, 1, column)}: missing required column")
    frame["source_line"] = np.arange(2, len(frame) + 2)
    return frame


def _int_column(
    frame: pd.DataFrame, column: str, path: Path, low: int, high: int | None = None
) -> np.ndarray:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() | (values != values.round()) | (values < low)
    if high is not None:
        bad |= values > high
    if bad.any():
        row = frame.index[bad.to_numpy()][0]
        expected = f"an integer in [{low}, {high if high is not None else 'inf'}]"
        raise DataError(
            f"{_where(path, int(frame.at[row, 'source_line']), column)}: expected {expected}, "
            f"got {frame.at[row, column]!r}"
        )
    return values.to_numpy(dtype=np.int64)


def _date_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    dates = pd.to_datetime(frame[column].str.strip(), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = frame.index[dates.isna().to_numpy()][0]
        raise DataError(
            f"{_where(path, int(frame.at[row, 'source_line']), column)}: expected a date "
            f"YYYY-MM-DD, got {frame.at[row, column]!r}"
        )
    return dates.astype("datetime64[ns]")


def _load_kinsman(goal_times_dir: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matches, goals) of the Kinsman club data; see the two public loaders."""
    folder = Path(goal_times_dir) / "club_2012_2015_kinsman"
    path = folder / "results.csv"
    frame = _read_plain_csv(path, ("home_team", "away_team", "home_goals", "away_goals", "date"))
    matches = pd.DataFrame(
        {
            "match_id": np.arange(len(frame), dtype=np.int64),
            "date": _date_column(frame, "date", path),
            "home_team": frame["home_team"].str.strip(),
            "away_team": frame["away_team"].str.strip(),
            "home_goals": _int_column(frame, "home_goals", path, 0),
            "away_goals": _int_column(frame, "away_goals", path, 0),
        }
    )
    matches.insert(2, "season", [_season_of_date(d) for d in matches["date"]])
    matches.insert(3, "league", _label_kinsman_leagues(matches))
    goals = _join_goal_minutes(matches, folder / "minutes.csv")
    counts = goals.groupby(["match_id", "side"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=matches["match_id"], columns=["home", "away"], fill_value=0)
    matches["home_goal_minutes"] = counts["home"].to_numpy(dtype=np.int64)
    matches["away_goal_minutes"] = counts["away"].to_numpy(dtype=np.int64)
    matches["consistent"] = (matches["home_goal_minutes"] == matches["home_goals"]) & (
        matches["away_goal_minutes"] == matches["away_goals"]
    )
    return matches, goals


def load_goal_time_matches(goal_times_dir: Path | str = DEFAULT_GOAL_TIMES_DIR) -> pd.DataFrame:
    """Kinsman club matches 2012-2015, one row per match, in file order.

    Columns: ``match_id`` (0-based row of ``results.csv``), ``date``, ``season``
    (``YYZZ``), ``league`` (football-data code inferred from the fixture graph: E0/E1,
    D1/D2, I1/I2, SC0), ``home_team``, ``away_team``, ``home_goals``, ``away_goals``,
    ``home_goal_minutes``/``away_goal_minutes`` (goals of that side in ``minutes.csv``)
    and ``consistent`` (both counts equal the result). Team names are the source's own
    spellings (e.g. "Newcastle United"), not football-data's.
    """
    return _load_kinsman(goal_times_dir)[0]


def _join_goal_minutes(matches: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Per goal of ``minutes.csv``: ``match_id``, ``side``, ``minute``, ``source_line``."""
    frame = _read_plain_csv(path, ("conceding_team", "date", "minute", "scoring_team"))
    dates = _date_column(frame, "date", path)
    minutes = _int_column(frame, "minute", path, 1, 90)
    scoring = frame["scoring_team"].str.strip().to_numpy()
    conceding = frame["conceding_team"].str.strip().to_numpy()
    by_key = {
        (date, home, away): match_id
        for match_id, date, home, away in zip(
            matches["match_id"], matches["date"], matches["home_team"], matches["away_team"],
            strict=True,
        )
    }  # fmt: skip
    match_ids = np.empty(len(frame), dtype=np.int64)
    sides = np.empty(len(frame), dtype=object)
    for row, (date, scorer, conceder) in enumerate(zip(dates, scoring, conceding, strict=True)):
        home_id = by_key.get((date, scorer, conceder))
        away_id = by_key.get((date, conceder, scorer))
        if home_id is not None:
            match_ids[row], sides[row] = home_id, "home"
        elif away_id is not None:
            match_ids[row], sides[row] = away_id, "away"
        else:
            raise DataError(
                f"{_where(path, row + 2, 'scoring_team')}: no match in results.csv on "
                f"{date.date()} between {scorer!r} and {conceder!r}"
            )
    return pd.DataFrame(
        {
            "match_id": match_ids,
            "minute": minutes,
            "side": pd.Series(sides, dtype=object).astype(str),
            "scoring_team": scoring,
            "conceding_team": conceding,
            "source_line": frame["source_line"].to_numpy(dtype=np.int64),
        }
    )


def load_goal_times(goal_times_dir: Path | str = DEFAULT_GOAL_TIMES_DIR) -> pd.DataFrame:
    """Kinsman club goals 2012-2015, one row per goal, joined to its match.

    Columns: ``match_id``, ``date``, ``season``, ``league``, ``home_team``, ``away_team``,
    ``home_goals``, ``away_goals`` (final score from ``results.csv``), ``minute`` (int
    1..90; stoppage-time goals are folded into 45 and 90 by the source), ``side``
    (``"home"``/``"away"``, the scoring side), ``scoring_team``, ``conceding_team``,
    ``consistent`` (the match's goal minutes add up to its score), ``source_line`` (line
    in ``minutes.csv``). Ordered like ``minutes.csv``. Same-minute duplicates are kept:
    two goals in one (folded) minute are real.
    """
    matches, goals = _load_kinsman(goal_times_dir)
    match_columns = [
        "match_id", "date", "season", "league", "home_team", "away_team",
        "home_goals", "away_goals", "consistent",
    ]  # fmt: skip
    joined = goals.merge(matches[match_columns], on="match_id", how="left", validate="m:1")
    order = [*match_columns[:-1], "minute", "side", "scoring_team", "conceding_team"]
    return joined[[*order, "consistent", "source_line"]]


def load_international_goal_minutes(
    path: Path | str = DEFAULT_INTERNATIONAL_GOALS,
) -> pd.DataFrame:
    """Goals of men's internationals (martj42 ``goalscorers.csv``), rows without a minute dropped.

    Columns: ``date``, ``home_team``, ``away_team``, ``team`` (credited side), ``side``
    (``"home"``/``"away"``), ``minute`` (int >= 1; > 90 in extra time, stoppage time
    folded into 45/90 by the source), ``own_goal``, ``penalty`` (bool), ``source_line``.
    """
    path = Path(path)
    columns = ("date", "home_team", "away_team", "team", "minute", "own_goal", "penalty")
    frame = _read_plain_csv(path, columns)
    # The source writes "NA" (254 rows) where the minute is unknown.
    frame = frame[~frame["minute"].str.strip().str.upper().isin(["", "NA", "NAN"])]
    side = np.where(
        frame["team"] == frame["home_team"],
        "home",
        np.where(frame["team"] == frame["away_team"], "away", ""),
    )
    if (side == "").any():
        row = frame.index[side == ""][0]
        raise DataError(
            f"{_where(path, int(frame.at[row, 'source_line']), 'team')}: team "
            f"{frame.at[row, 'team']!r} is neither home nor away team"
        )
    flags = {}
    for column in ("own_goal", "penalty"):
        text = frame[column].str.strip().str.upper()
        bad = ~text.isin(["TRUE", "FALSE"])
        if bad.any():
            row = frame.index[bad.to_numpy()][0]
            raise DataError(
                f"{_where(path, int(frame.at[row, 'source_line']), column)}: expected "
                f"TRUE/FALSE, got {frame.at[row, column]!r}"
            )
        flags[column] = (text == "TRUE").to_numpy()
    return pd.DataFrame(
        {
            "date": _date_column(frame, "date", path).to_numpy(),
            "home_team": frame["home_team"].to_numpy(),
            "away_team": frame["away_team"].to_numpy(),
            "team": frame["team"].to_numpy(),
            "side": side.astype(str),
            "minute": _int_column(frame, "minute", path, 1),
            "own_goal": flags["own_goal"],
            "penalty": flags["penalty"],
            "source_line": frame["source_line"].to_numpy(dtype=np.int64),
        }
    ).reset_index(drop=True)
