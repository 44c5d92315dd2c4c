"""Market calibration: simulated bookmaker (calm regime) against real closing odds.

    python -m experiments.market_calibration league=E0 test_seasons=[2324,2425] \\
        [data_dir=../shared/data/football-data] [replications=10] [fit=true] [seed=0] \\
        [out=FILE.json]

Loads the league's test seasons, replays their fixtures through the simulated market
(``market_sim.market_calibration``) and prints the rows (real, sim, errors, tolerance,
pass) as JSON; with ``fit=true`` (default) the bookmaker's goal spread and news noise are
first fitted to the league's Pinnacle RPS and price drift and the overrounds set to the
books' means; the fitted values are printed too. ``experiments.calibrate`` merges the
rows of ``market_statistics`` into ``calibration.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jax

from market_sim import data
from market_sim.league_model import LeagueModel, load_league_model
from market_sim.market_calibration import market_rows
from market_sim.regimes import Regime, regime_params

#: Regime fields the calibration fits (reported next to the rows).
FITTED_FIELDS = ("overround_1x2", "goal_spread", "news_noise", "belief_noise")


def market_calibration(
    league: str,
    test_seasons: list[str],
    data_dir: Path | str | None = None,
    key: jax.Array | None = None,
    *,
    replications: int = 10,
    fit: bool = True,
    model: LeagueModel | None = None,
    regime: Regime | None = None,
    bootstrap: int = 1000,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """(rows, fitted profile values per book) of a league's market calibration."""
    frame = data.load_league(
        data.DEFAULT_DATA_DIR if data_dir is None else data_dir, league, test_seasons
    )
    rows, regimes = market_rows(
        frame,
        load_league_model(league) if model is None else model,
        regime_params("calm") if regime is None else regime,
        jax.random.PRNGKey(0) if key is None else key,
        replications=replications,
        fit=fit,
        bootstrap=bootstrap,
    )
    fitted = {
        book: {name: float(getattr(spec, name)) for name in FITTED_FIELDS}
        for book, spec in regimes.items()
    }
    return rows, fitted


def market_statistics(
    league: str,
    test_seasons: list[str],
    data_dir: Path | str | None = None,
    key: jax.Array | None = None,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """Rows ``{name: {real, sim, abs_err, rel_err, tolerance, tolerance_kind, pass}}``
    (FLB rows add ``real_low``/``real_high``); options as ``market_calibration``."""
    rows, _ = market_calibration(league, test_seasons, data_dir, key, **options)
    return rows


def _parse(arguments: list[str]) -> dict[str, Any]:
    """``key=value`` arguments (Hydra-style overrides; lists as ``[a,b]``)."""
    options: dict[str, Any] = {
        "league": "E0",
        "test_seasons": ["2324", "2425"],
        "data_dir": None,
        "replications": 10,
        "fit": True,
        "seed": 0,
        "out": None,
    }
    for argument in arguments:
        name, _, value = argument.partition("=")
        if name not in options:
            raise SystemExit(f"unknown option {name!r}; valid: {', '.join(options)}")
        if name == "test_seasons":
            options[name] = [s.strip() for s in value.strip("[]").split(",") if s.strip()]
        elif name in ("replications", "seed"):
            options[name] = int(value)
        elif name == "fit":
            options[name] = value.lower() in ("1", "true", "yes")
        else:
            options[name] = value
    return options


def main(arguments: list[str] | None = None) -> None:
    options = _parse(sys.argv[1:] if arguments is None else arguments)
    rows, fitted = market_calibration(
        options["league"],
        options["test_seasons"],
        options["data_dir"],
        jax.random.PRNGKey(options["seed"]),
        replications=options["replications"],
        fit=options["fit"],
    )
    document = {"league": options["league"], "rows": rows, "fitted": fitted}
    text = json.dumps(document, indent=1)
    if options["out"]:
        Path(options["out"]).write_text(text)
    print(text)
    passed = sum(row["pass"] for row in rows.values())
    print(f"{options['league']}: {passed}/{len(rows)} market statistics pass", file=sys.stderr)


__all__ = ["market_calibration", "market_statistics"]

if __name__ == "__main__":
    main()
