"""Build ``EnvParams`` from user-facing keyword arguments, validated at the boundary."""

from __future__ import annotations

from typing import Any

from envs.functional import EnvParams
from market_sim.checks import require_range
from market_sim.league_model import LeagueModel, embedded_leagues
from market_sim.regimes import REGIME_NAMES, Regime, market_params

#: Keyword arguments accepted by ``make_params`` (and the environments), with defaults.
ENV_DEFAULTS: dict[str, Any] = {
    "regime": "calm",
    "league": "E0",
    "n_matches": 10,
    "pre_match_ticks": 6,
    "bankroll": 1000.0,
    "season_mode": False,
    "season_rounds": 19,
    "per_bet_cap": 0.05,
    "hard_cap_base": 0.3,
    "hard_cap_k": 5.0,
    "cluster_threshold": 0.3,
    "information": "oracle_noise",
    "action_mode": "increment",
    "model_noise": 0.15,
    "depth_reference": 50.0,
    "vol_reference": 0.02,
    "kappa_initial": 1.0,
    "target_cas1": 0.10,
    "recovery_drawdown": 0.05,
    "shaping_weight": 0.0,
    "shaping_discount": 0.99,
    "signal_window": 10,
}

INFORMATION_SOURCES = ("oracle_noise", "market_noise", "predictor")
ACTION_MODES = ("increment", "target")


def make_params(**kwargs: Any) -> EnvParams:
    """``EnvParams`` from keyword arguments (see ``ENV_DEFAULTS``); errors name the key.

    ``league``: an embedded code (``embedded_leagues()``) or a ``LeagueModel``;
    ``regime``: a name in ``REGIME_NAMES`` or a ``Regime``; ``information``:
    ``oracle_noise`` (model = oracle + logit noise of sd ``model_noise``),
    ``market_noise`` (model = the market's de-margined price + that noise: no edge) or
    ``predictor`` (the caller passes ``model_probability`` to ``step``); ``action_mode``:
    ``increment`` (a > 0 asks for a new stake of a × per_bet_cap × bankroll) or ``target``
    (a > 0 asks for that open exposure on the selection).
    """
    unknown = sorted(set(kwargs) - set(ENV_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown environment options {unknown}; valid: {sorted(ENV_DEFAULTS)}")
    config = {**ENV_DEFAULTS, **kwargs}
    league = config["league"]
    if isinstance(league, str) and league not in embedded_leagues():
        raise ValueError(f"unknown league {league!r}; embedded leagues: {embedded_leagues()}")
    if not isinstance(league, str | LeagueModel):
        raise ValueError(f"league: expected a code or a LeagueModel, got {type(league).__name__}")
    regime = config["regime"]
    if isinstance(regime, str) and regime not in REGIME_NAMES:
        raise ValueError(f"unknown regime {regime!r}; valid regimes: {', '.join(REGIME_NAMES)}")
    if not isinstance(regime, str | Regime):
        raise ValueError(f"regime: expected a name or a Regime, got {type(regime).__name__}")
    if config["information"] not in INFORMATION_SOURCES:
        raise ValueError(
            f"unknown information source {config['information']!r}; valid: {INFORMATION_SOURCES}"
        )
    if config["action_mode"] not in ACTION_MODES:
        raise ValueError(f"unknown action_mode {config['action_mode']!r}; valid: {ACTION_MODES}")
    for name, low, high in (
        ("per_bet_cap", 0.0, 1.0),
        ("hard_cap_base", 0.0, 1.0),
        ("hard_cap_k", 1e-6, None),
        ("model_noise", 0.0, 5.0),
        ("depth_reference", 1e-6, None),
        ("vol_reference", 1e-6, None),
        ("kappa_initial", 0.5, 1.5),
        ("target_cas1", 0.0, 1.0),
        ("shaping_weight", 0.0, None),
        ("shaping_discount", 0.0, 1.0),
        ("bankroll", 1e-6, None),
    ):
        require_range(name, config[name], low, high)
    market = market_params(
        league,
        regime,
        n_matches=int(config["n_matches"]),
        pre_match_ticks=int(config["pre_match_ticks"]),
        bankroll=float(config["bankroll"]),
    )
    return EnvParams(
        market=market,
        per_bet_cap=float(config["per_bet_cap"]),
        hard_cap_base=float(config["hard_cap_base"]),
        hard_cap_k=float(config["hard_cap_k"]),
        cluster_threshold=float(config["cluster_threshold"]),
        model_noise=float(config["model_noise"]),
        depth_reference=float(config["depth_reference"]),
        vol_reference=float(config["vol_reference"]),
        kappa_initial=float(config["kappa_initial"]),
        target_cas1=float(config["target_cas1"]),
        recovery_drawdown=float(config["recovery_drawdown"]),
        shaping_weight=float(config["shaping_weight"]),
        shaping=float(config["shaping_weight"]) > 0,
        shaping_discount=float(config["shaping_discount"]),
        signal_window=int(config["signal_window"]),
        season_rounds=int(config["season_rounds"]) if config["season_mode"] else 1,
        target_actions=config["action_mode"] == "target",
        model_source="market" if config["information"] == "market_noise" else "oracle",
    )
