"""A fitted league as a small, portable model: team rates plus engine structure.

``LeagueModel`` is what the simulator needs to play any fixture of a league: per-team
log-strengths for goals and every event count, the league's home advantage and
intercepts, and the fitted ``EngineParams`` values. It is written by
``experiments.calibrate`` (``league_model.json``) and embedded for the default leagues
in ``market_sim/leagues/<code>.json``, so environments run without the raw data.

``LeagueArrays`` is its pytree form for jitted code: ``fixture_params(arrays, home,
away)`` builds ``MatchParams`` for traced team indices, and ``sample_fixtures`` draws a
slate of distinct teams, both inside ``jit``/``vmap``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from market_sim.params import MATCH_FIELDS, EngineParams, MatchParams, make_engine_params

#: Folder of the embedded league models.
LEAGUES_DIR = Path(__file__).resolve().parent / "leagues"

#: Fields with per-team strengths (red cards are league-level means).
TEAM_FIELDS = tuple(field for field in MATCH_FIELDS if field != "red_cards")


@dataclasses.dataclass(frozen=True)
class LeagueModel:
    """Fitted parameters of one league (JSON-serialisable).

    ``strengths[field]`` holds ``for``/``against`` log multipliers per team (``teams``
    order), ``home_advantage`` and ``intercept`` (log-rate terms): the expected count of
    the home side is exp(intercept + home_advantage + for[home] + against[away]) and of
    the away side exp(intercept + for[away] + against[home]).
    """

    league: str
    seasons: tuple[str, ...]
    teams: tuple[str, ...]
    strengths: dict[str, dict[str, Any]]
    red_cards: tuple[float, float]
    rho: float
    engine: dict[str, float]

    def engine_params(self) -> EngineParams:
        return make_engine_params(**self.engine)

    def arrays(self) -> LeagueArrays:
        """The jit-friendly pytree form."""
        return LeagueArrays(
            for_strength=jnp.asarray(
                [self.strengths[f]["for"] for f in TEAM_FIELDS], dtype=jnp.float32
            ),
            against_strength=jnp.asarray(
                [self.strengths[f]["against"] for f in TEAM_FIELDS], dtype=jnp.float32
            ),
            home_advantage=jnp.asarray(
                [self.strengths[f]["home_advantage"] for f in TEAM_FIELDS], dtype=jnp.float32
            ),
            intercept=jnp.asarray(
                [self.strengths[f]["intercept"] for f in TEAM_FIELDS], dtype=jnp.float32
            ),
            red_cards=jnp.asarray(self.red_cards, dtype=jnp.float32),
        )

    def team_index(self, name: str) -> int:
        try:
            return self.teams.index(name)
        except ValueError:
            raise ValueError(
                f"team {name!r} is not in the {self.league} model; teams: {', '.join(self.teams)}"
            ) from None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> LeagueModel:
        missing = {f.name for f in dataclasses.fields(cls)} - set(document)
        if missing:
            raise ValueError(f"league model: missing fields {sorted(missing)}")
        n_teams = len(document["teams"])
        for field in TEAM_FIELDS:
            entry = document["strengths"].get(field)
            if entry is None:
                raise ValueError(f"league model: strengths.{field} missing")
            for side in ("for", "against"):
                if len(entry[side]) != n_teams:
                    raise ValueError(
                        f"league model: strengths.{field}.{side} has {len(entry[side])} "
                        f"values for {n_teams} teams"
                    )
        return cls(
            league=document["league"],
            seasons=tuple(document["seasons"]),
            teams=tuple(document["teams"]),
            strengths=document["strengths"],
            red_cards=(float(document["red_cards"][0]), float(document["red_cards"][1])),
            rho=float(document["rho"]),
            engine={k: float(v) for k, v in document["engine"].items()},
        )

    @classmethod
    def load(cls, path: Path | str) -> LeagueModel:
        return cls.from_dict(json.loads(Path(path).read_text()))


def embedded_leagues() -> list[str]:
    """League codes with an embedded model in ``market_sim/leagues``."""
    return sorted(path.stem for path in LEAGUES_DIR.glob("*.json"))


def load_league_model(league: str) -> LeagueModel:
    """The embedded model of ``league`` (e.g. ``"E0"``); error lists the available ones."""
    path = LEAGUES_DIR / f"{league}.json"
    if not path.is_file():
        raise ValueError(
            f"unknown league {league!r}: no embedded model; available: "
            f"{', '.join(embedded_leagues()) or 'none'} (fit one with experiments.calibrate "
            "and load it with LeagueModel.load)"
        )
    return LeagueModel.load(path)


@struct.dataclass
class LeagueArrays:
    """Per-team log-strengths stacked by field: ``[len(TEAM_FIELDS), n_teams]``."""

    for_strength: Any
    against_strength: Any
    home_advantage: Any
    intercept: Any
    red_cards: Any


def fixture_params(arrays: LeagueArrays, home: Any, away: Any) -> MatchParams:
    """``MatchParams`` for fixtures with team indices ``home``/``away`` (traceable).

    Shapes: indices ``[...]`` → fields ``[..., 2]``. Nesting goals ≤ shots on target ≤
    shots is enforced as in the calibration.
    """
    home = jnp.asarray(home)
    away = jnp.asarray(away)
    log_home = (
        arrays.intercept[:, None]
        + arrays.home_advantage[:, None]
        + arrays.for_strength[:, home.ravel()]
        + arrays.against_strength[:, away.ravel()]
    )
    log_away = (
        arrays.intercept[:, None]
        + arrays.for_strength[:, away.ravel()]
        + arrays.against_strength[:, home.ravel()]
    )
    rates = jnp.exp(jnp.stack([log_home, log_away], axis=-1))  # [fields, n, 2]
    rates = rates.reshape((len(TEAM_FIELDS), *home.shape, 2))
    values = dict(zip(TEAM_FIELDS, rates, strict=True))
    values["shots_on_target"] = jnp.maximum(values["shots_on_target"], values["goals"] * 1.05)
    values["shots"] = jnp.maximum(values["shots"], values["shots_on_target"] * 1.05)
    values["red_cards"] = jnp.broadcast_to(arrays.red_cards, (*home.shape, 2))
    return MatchParams(**values)


def sample_fixtures(key: jax.Array, n_teams: int, n_matches: int) -> tuple[jax.Array, jax.Array]:
    """A slate of ``n_matches`` fixtures between distinct teams (home, away indices).

    Requires ``2 * n_matches <= n_teams`` (static ints). Traceable.
    """
    if 2 * n_matches > n_teams:
        raise ValueError(
            f"n_matches: a slate of {n_matches} matches needs {2 * n_matches} distinct teams, "
            f"the league has {n_teams}"
        )
    order = jax.random.permutation(key, n_teams)[: 2 * n_matches]
    return order[0::2], order[1::2]


def model_from_calibration(calibration: Any) -> LeagueModel:
    """Build a ``LeagueModel`` from ``market_sim.calibrate.LeagueCalibration``."""
    rates = calibration.rates
    strengths: dict[str, dict[str, Any]] = {
        "goals": {
            "for": np.asarray(rates.goals.attack).tolist(),
            "against": np.asarray(rates.goals.defence).tolist(),
            "home_advantage": float(rates.goals.home_advantage),
            "intercept": float(rates.goals.intercept),
        }
    }
    for field, fit in rates.events.items():
        strengths[field] = {
            "for": np.asarray(fit.for_strength).tolist(),
            "against": np.asarray(fit.against_strength).tolist(),
            "home_advantage": float(fit.home_advantage),
            "intercept": float(fit.intercept),
        }
    timing = calibration.timing
    engine = {
        "first_half_slope": timing.first_half_slope,
        "second_half_level": timing.second_half_level,
        "second_half_slope": timing.second_half_slope,
        "stoppage_first_mean": timing.stoppage_first_mean,
        "stoppage_second_mean": timing.stoppage_second_mean,
        **calibration.structure.values,
    }
    return LeagueModel(
        league=calibration.league,
        seasons=tuple(calibration.fit_seasons),
        teams=tuple(rates.teams),
        strengths=strengths,
        red_cards=(float(rates.red_cards[0]), float(rates.red_cards[1])),
        rho=float(rates.goals.rho),
        engine={k: float(v) for k, v in engine.items()},
    )
