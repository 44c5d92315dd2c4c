"""Named market regimes: real-like default and synthetic stress scenarios.

A ``Regime`` is a flat, plain-Python parameter set (its field names are the keys of
``conf/regime/<name>.yaml``): the bookmaker's profile, the crowd's mix, the schedule of
shocks and shifts, and a few overrides of the league's engine. It composes with any
league model: ``market_params(league, regime)`` builds ``MarketParams``.

``regime_params(name)`` returns a named regime (each defined by a function below whose
docstring says what it models); ``regime_from_config(mapping)`` builds one from a Hydra
config (unknown keys are an error); ``REGIME_NAMES`` lists the names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from market_sim.bookmaker import BookmakerProfile
from market_sim.crowd import CrowdParams
from market_sim.league_model import LeagueModel, load_league_model
from market_sim.margin import METHODS
from market_sim.market import MarketParams, ScheduleParams, make_market_params


@dataclasses.dataclass(frozen=True)
class Regime:
    """Every knob of the market, flat (units in ``BookmakerProfile``/``CrowdParams``/
    ``ScheduleParams``). ``openness_std``/``momentum_goal_loading``: engine overrides
    (``None`` keeps the league's fitted value). ``break_shift_std``/``break_seed``: the
    per-team (attack, defence) log shifts of a structural break are drawn once from
    Normal(0, std) with this seed."""

    name: str = "custom"
    # Bookmaker.
    overround_1x2: float = 0.055
    overround_ou: float = 0.05
    margin_method: str = "shin"
    belief_noise: float = 0.1
    news_noise: float = 0.08
    liability_sensitivity: float = 0.15
    skew_reversion: float = 0.1
    suspension_minutes: int = 2
    liquidity_close: float = 5000.0
    liquidity_snapshot_share: float = 0.3
    liquidity_inplay: float = 0.6
    liquidity_noise: float = 0.2
    depth_fraction: float = 0.25
    # Crowd.
    recreational_share: float = 0.6
    longshot_bias: float = 0.15
    recreational_noise: float = 0.5
    herding_share: float = 0.15
    herding_gain: float = 50.0
    herding_memory: float = 0.7
    informed_share: float = 0.25
    informed_gain: float = 10.0
    informed_threshold: float = 0.0
    ou_share: float = 0.3
    # Schedule.
    manipulation_rate: float = 0.0
    manipulation_size: float = 0.0
    manipulation_depth_factor: float = 1.0
    manipulation_duration: int = 0
    break_round: int = 1_000_000
    break_lag_rounds: int = 0
    break_shift_std: float = 0.0
    break_seed: int = 0
    red_card_multiplier: float = 1.0
    shared_factor_std: float = 0.1
    goal_spread: float = 1.0
    # Engine overrides.
    openness_std: float | None = None
    momentum_goal_loading: float | None = None

    def __post_init__(self) -> None:
        if self.margin_method not in METHODS:
            raise ValueError(
                f"Regime.margin_method: expected one of {METHODS}, got {self.margin_method!r}"
            )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and (
                not np.isfinite(value) or (value < 0 and field.name != "informed_threshold")
            ):
                raise ValueError(f"Regime.{field.name}: expected a finite value ≥ 0, got {value!r}")
        for name in ("longshot_bias", "herding_memory", "skew_reversion", "ou_share"):
            if getattr(self, name) >= 1.0:
                raise ValueError(f"Regime.{name}: expected < 1, got {getattr(self, name)!r}")


_BOOKMAKER_FIELDS = tuple(
    f.name for f in dataclasses.fields(BookmakerProfile) if f.name != "margin_method"
)
_CROWD_FIELDS = tuple(f.name for f in dataclasses.fields(CrowdParams))
_SCHEDULE_FIELDS = (
    "manipulation_rate",
    "manipulation_size",
    "manipulation_depth_factor",
    "manipulation_duration",
    "break_round",
    "break_lag_rounds",
    "red_card_multiplier",
    "shared_factor_std",
    "goal_spread",
)

#: Bookmaker profiles fitted to football-data's closing odds (E0 2023-25; see
#: ``market_sim.market_calibration``): Pinnacle (sharp) and Bet365 (soft).
PROFILES: dict[str, dict[str, Any]] = {
    "sharp": {
        "overround_1x2": 0.0296,
        "overround_ou": 0.0328,
        "belief_noise": 0.05,
        "news_noise": 0.0539,
    },
    "soft": {
        "overround_1x2": 0.0547,
        "overround_ou": 0.0502,
        "belief_noise": 0.07,
        "news_noise": 0.0539,
    },
}


#: Goal spread fitted with the sharp profile to Pinnacle's closing RPS (E0 2023-25).
CALM_GOAL_SPREAD = 1.2266


def with_profile(regime: Regime, profile: str) -> Regime:
    """``regime`` with the bookmaker fields of a named profile (``sharp`` or ``soft``)."""
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    return dataclasses.replace(regime, **PROFILES[profile])


def calm() -> Regime:
    """Real-like default: a soft (Bet365-like) book with its fitted margin and belief
    noise, a mostly recreational crowd with a mild longshot bias, some herding and some
    informed money; prices, margins, drift and FLB calibrated to real closing odds."""
    return with_profile(Regime(name="calm", goal_spread=CALM_GOAL_SPREAD), "soft")


def biased_crowd() -> Regime:
    """Exploitable edge: a strongly longshot-biased, herding recreational crowd and no
    informed money; the soft book follows its liabilities hard (high sensitivity, slow
    reversion) and has noisy beliefs, so favourites drift to value prices."""
    return dataclasses.replace(
        calm(),
        name="biased_crowd",
        longshot_bias=0.6,
        recreational_share=0.8,
        herding_share=0.3,
        informed_share=0.0,
        liability_sensitivity=0.5,
        skew_reversion=0.02,
        belief_noise=0.2,
        margin_method="multiplicative",
    )


def efficient() -> Regime:
    """No edge: a sharp book with an accurate belief and a thin margin spread evenly
    (multiplicative: no favourite–longshot bias), informed money dominant (it corrects
    any mispricing beyond the margin over a few ticks), no longshot bias or herding; the
    slate's day factor is small (the book's only blind spot would be a one-sided source
    of error: informed money backs underpriced selections but nobody lays overpriced
    ones)."""
    return dataclasses.replace(
        calm(),
        name="efficient",
        overround_1x2=0.02,
        overround_ou=0.02,
        belief_noise=0.02,
        news_noise=0.02,
        longshot_bias=0.0,
        recreational_share=0.4,
        herding_share=0.0,
        informed_share=0.6,
        informed_gain=2.0,
        liability_sensitivity=0.5,
        shared_factor_std=0.03,
        margin_method="multiplicative",
    )


def herding_frenzy() -> Regime:
    """Momentum mania: herding money dominates and reacts strongly to any price move, so
    every move — including the one our own stake causes — is amplified (γ > 0)."""
    return dataclasses.replace(
        calm(),
        name="herding_frenzy",
        herding_share=0.6,
        herding_gain=12.0,
        herding_memory=0.5,
        informed_share=0.05,
        liability_sensitivity=1.0,
        skew_reversion=0.05,
    )


def manipulation() -> Regime:
    """Prices moved by something other than football: sudden price shocks on a random
    selection and depth withdrawals (to a tenth) with no goal, card or news behind them."""
    return dataclasses.replace(
        calm(),
        name="manipulation",
        manipulation_rate=0.05,
        manipulation_size=0.4,
        manipulation_depth_factor=0.1,
        manipulation_duration=5,
    )


def liquidity_crunch() -> Regime:
    """Thin market: a tenth of the usual liquidity, half the depth share and a more
    sensitive book, so that our stakes move prices a lot and fill only partly."""
    return dataclasses.replace(
        calm(),
        name="liquidity_crunch",
        liquidity_close=500.0,
        depth_fraction=0.12,
        liability_sensitivity=1.5,
    )


def variance_explosion() -> Regime:
    """Heavier-tailed scoring the book does not price: a wide match-level openness factor
    (over-dispersed goals), strong momentum loading on goals and three times the red
    cards."""
    return dataclasses.replace(
        calm(),
        name="variance_explosion",
        openness_std=0.45,
        momentum_goal_loading=0.5,
        red_card_multiplier=3.0,
        shared_factor_std=0.25,
    )


def structural_break() -> Regime:
    """A change point (SPEC §7): from round 19 every team's attack and defence goal
    strengths shift abruptly (log shifts ~ Normal(0, 0.35)); the bookmaker adopts the new
    strengths only 5 rounds later."""
    return dataclasses.replace(
        calm(),
        name="structural_break",
        break_round=19,
        break_lag_rounds=5,
        break_shift_std=0.35,
        break_seed=7,
    )


_FACTORIES: dict[str, Callable[[], Regime]] = {
    factory.__name__: factory
    for factory in (
        calm,
        biased_crowd,
        efficient,
        herding_frenzy,
        manipulation,
        liquidity_crunch,
        variance_explosion,
        structural_break,
    )
}
#: Valid regime names.
REGIME_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def regime_params(name: str) -> Regime:
    """The named regime; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown regime {name!r}; valid regimes: {', '.join(REGIME_NAMES)}")
    return _FACTORIES[name]()


def regime_from_config(config: Mapping[str, Any]) -> Regime:
    """A ``Regime`` from a mapping (e.g. a Hydra ``regime`` group node).

    Keys are ``Regime`` field names; missing ones take the named base regime's values
    (key ``name``, if it names a known regime) or the defaults. Unknown keys raise
    ``ValueError`` naming them and listing the valid ones.
    """
    valid = {f.name for f in dataclasses.fields(Regime)}
    unknown = sorted(set(config) - valid)
    if unknown:
        raise ValueError(f"regime config: unknown keys {unknown}; valid keys: {sorted(valid)}")
    values = dict(config)
    name = values.get("name", "custom")
    base = _FACTORIES[name]() if name in _FACTORIES else Regime()
    return dataclasses.replace(base, **values)


def market_params(
    league: LeagueModel | str,
    regime: Regime | str = "calm",
    *,
    n_matches: int = 10,
    pre_match_ticks: int = 6,
    bankroll: float = 1000.0,
    gamma_window: int = 50,
) -> MarketParams:
    """``MarketParams`` of a league (model or embedded code, e.g. ``"E0"``) in a regime."""
    model = load_league_model(league) if isinstance(league, str) else league
    spec = regime_params(regime) if isinstance(regime, str) else regime
    bookmaker = BookmakerProfile(
        **{name: jnp.float32(getattr(spec, name)) for name in _BOOKMAKER_FIELDS},
        margin_method=spec.margin_method,
    )
    crowd = CrowdParams(**{name: jnp.float32(getattr(spec, name)) for name in _CROWD_FIELDS})
    rng = np.random.default_rng(spec.break_seed)
    shift = spec.break_shift_std * rng.standard_normal((len(model.teams), 2))
    shift -= shift.mean(axis=0)  # a reshuffle of strengths, not a league-wide level change
    schedule = ScheduleParams(
        **{name: jnp.float32(getattr(spec, name)) for name in _SCHEDULE_FIELDS},
        break_shift=jnp.asarray(shift, jnp.float32),
    )
    overrides = {
        name: float(value)
        for name in ("openness_std", "momentum_goal_loading")
        if (value := getattr(spec, name)) is not None
    }
    return make_market_params(
        model,
        bookmaker,
        crowd,
        schedule,
        overrides,
        n_matches=n_matches,
        pre_match_ticks=pre_match_ticks,
        bankroll=bankroll,
        gamma_window=gamma_window,
    )
