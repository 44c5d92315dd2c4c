"""``tetra/FootballReplay-v0``: pre-match betting over real seasons (football-data CSVs).

    env = gymnasium.make("tetra/FootballReplay-v0", league="E0", seasons=[2324, 2425],
                         data_dir=..., price="pinnacle")

One step = one slate (the fixtures priced by one odds snapshot, see Slates): the agent
sees the pre-match observation and stakes;
bets are filled at the chosen book's pre-match *snapshot* odds and settled on the real
results; reward = Δ log equity. The episode is the seasons' slates in date order; it
ends after the last one or on bankruptcy (equity < 0.1 % of the starting bankroll).

No look-ahead (the firewall, pinned by tests): an observation built for a slate starting
(decided) on day d reads only (a) the snapshot odds of that slate's own matches and (b) results of
matches played strictly before d. Closing odds are read only for ``info["clv"]``, and
results only after the step, for settlement and ``info["results"]``.

Observation: exactly the simulator's layout (``envs.functional.observation_names`` with
the same ``n_matches``), pre-match values filled in (see ``_slot_columns``), so a policy
trained in the simulator runs here unchanged:

- minute 0, pre_match 1, every event count 0, momentum 0, suspended 0;
- ``liquidity`` = the nominal ``liquidity`` option (default 1500 = the simulator
  bookmaker's snapshot-level liquidity, ``liquidity_close`` 5000 × snapshot share 0.3)
  / ``depth_reference``; momentum_corr 0, vol_idx 0 (one tick: no rolling window), decay
  = time_decay(0);
- ``market_probability_*``: the snapshot odds de-margined with ``margin_method`` (Shin,
  as the simulator's bookmaker); ``overround_*`` = Σ 1/odds − 1 per market;
- ``depth_*`` = the nominal per-selection ``depth`` (default 375 = depth_fraction 0.25 ×
  the nominal liquidity, read as the most the book takes per selection) / bankroll; 0 on
  padded slots and selections without a price, so the projection stakes nothing there;
- ``model_probability_*``: a time-weighted (ξ = ``xi`` per day) Dixon–Coles model fitted
  on matches strictly before the slate's first day: the earlier matches of the selected
  seasons plus, when ``data_dir`` holds it, the season before the first one (warm-up;
  its results only, never its odds). Fewer than ``min_fit_matches`` past matches → the
  model echoes the market (no edge). A team without past matches (promoted) gets the
  fitted strengths' lower quartile of attack and upper quartile of defence;
- ``expected_return_*`` = model_probability × the snapshot odds − 1 (0 without a price),
  clipped as in ``envs.functional.expected_return``;
- vsnr/depth_ratio/conf_w/cas from ``market_sim.signals`` on the single available tick
  (vsnr 0, so cas 0; conf_w = its floor 0.4), exposure 0;
- globals: bankroll_fraction (equity / starting bankroll), drawdown, γ 0, mode neutral,
  N_eff/λ/Hard-Cap of the proposal-free portfolio, κ initial, progress = step / steps.

Slates (``slate``):

- ``"snapshot"`` (default): the fixtures of one football-data odds snapshot, decided on
  the snapshot day. football-data collects its pre-match odds on Friday afternoon (by
  17:00 UK) for the Friday–Monday fixtures and on Tuesday afternoon (by 15:00) for the
  Tuesday–Thursday ones (``../shared/data/football-data/SOURCE.md``), so a slate is
  Friday–Monday or Tuesday–Thursday and its day d is that Friday or Tuesday
  (``snapshot_day``): the model knows the results before d, which the prices knew too,
  and nothing after them (no fixture kicks off before the afternoon collection).
- ``"round"``: rolling windows of ``round_days`` (default 4) days starting at the first
  unassigned fixture day, decided on that day.
- ``"date"``: one calendar day, decided on that day.

Why ``"snapshot"`` is the default: the bets are filled at the snapshot price, so the
decision must not know what happened after the snapshot. With ``"date"`` a Saturday,
Sunday or Monday slate's model has seen results (Friday evening's, Saturday's, …) that
its Friday prices had not — a stale-price edge —, and when a team plays twice in one
Friday–Monday window (holiday double rounds: 24–48 times a season in E1) even its own
result. In 2022-23…2024-25 that touches 48–84 % of the matches (E0, E1, D1; about two
leaked results per match on average). ``"round"`` removes most of it, but its windows
drift against the weekly snapshot rhythm (a window opened on a Wednesday runs into
Saturday, the next one opens on a Sunday priced on Friday): 1–20 % of the matches still
leak, most in leagues with midweek rounds (E1). ``"snapshot"`` leaks none by
construction. Measured effect on the Dixon–Coles model (E0 and E1, 2023-24…2024-25): 1X2
probabilities move by ~0.001 on average and the log-loss by < 0.0005 either way — small
for this slowly updating model, but a systematic look-ahead that a faster model (form,
news) would exploit. Snapshot slates also need fewer fits (the env builds 3–4× faster
than with date slates). The rule follows football-data's notes; holiday schedules (e.g.
a Boxing Day lunchtime kick-off on a Tuesday) may have been collected otherwise, which
the files do not say.

A slate with fewer than ``n_matches`` fixtures is zero-padded; one with more is split
into consecutive steps of ``n_matches`` fixtures (file order) that all see the same past
(fit at the slate's day d; the results of a slate are settled only after its last step,
so the earlier steps have reward 0 and their stakes count as open exposure against the
Hard-Cap).

Prices (``price``): ``pinnacle``, ``bet365``, ``average``, ``max``. Each selected season
must hold the chosen book's 1X2 snapshot columns (else ``DataError`` naming the file and
the accepted headers). A single missing price falls back to the market average
(``odds_avg_*``) of the same row; O/U 2.5 likewise (Pinnacle has no O/U before
2019-20, Bet365 before 2019-20 either: the average is used). Without any price the
selection cannot be bet (depth 0) and its market probability is the model's.

Actions, caps and the projection are the simulator's (``envs.functional.action_to_stakes``
with ``market_sim.portfolio.project_stakes``). NaN/inf actions raise ``ValueError``.

``info`` (after a step): ``stakes`` [M, 5], ``proposed_stakes``, ``odds`` (taken),
``closing_odds`` (chosen book's close, else Pinnacle's; 0 if none), ``clv`` = odds /
closing − 1 [M, 5] where ``clv_valid`` (a bet and a close; else 0), ``bet_pnl`` [M, 5]
(0 until ``settled``, i.e. the slate's last step),
``settled_pnl`` (scalar), ``results`` [M, 2] (goals; −1 on padding), ``date`` (the
slate's day d; with ``"snapshot"`` the snapshot day, which may have no fixture),
``teams``, ``equity``, ``cash``, ``drawdown``; always ``pre_match_features`` [M, k] /
``pre_match_feature_names`` (``PRE_MATCH_FEATURE_NAMES``) for the returned observation,
``next_date`` and ``step_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from envs import functional
from envs.config import ENV_DEFAULTS
from envs.functional import (
    GLOBAL_COLUMNS,
    MATCH_COLUMNS,
    OBS_BOUND,
    PRE_MATCH_FEATURE_NAMES,
    EnvParams,
)
from envs.gym_env import validate_action
from market_sim import dixon_coles, margin, portfolio, signals
from market_sim.bookmaker import SELECTION_NAMES, SELECTIONS
from market_sim.data import (
    DEFAULT_DATA_DIR,
    ODDS_COLUMNS,
    DataError,
    load_league,
    normalize_season,
    season_start_year,
)

#: ``price`` option → column prefix in ``load_league``'s frame.
PRICE_SOURCES: dict[str, str] = {
    "pinnacle": "odds_pinnacle",
    "bet365": "odds_b365",
    "average": "odds_avg",
    "max": "odds_max",
}
SLATE_MODES = ("snapshot", "round", "date")
#: football-data collects its pre-match odds on Fridays (fixtures Friday–Monday) and
#: Tuesdays (fixtures Tuesday–Thursday): weekday (Monday = 0) → days back to that day.
_DAYS_SINCE_SNAPSHOT = (3, 0, 1, 2, 0, 1, 2)
_SELECTION_SUFFIX = ("home", "draw", "away", "over25", "under25")

#: Keyword arguments of ``ReplayEnv`` with defaults.
REPLAY_DEFAULTS: dict[str, Any] = {
    "league": "E0",
    "seasons": None,
    "data_dir": None,
    "price": "pinnacle",
    "slate": "snapshot",
    "round_days": 4,
    "n_matches": ENV_DEFAULTS["n_matches"],
    "bankroll": ENV_DEFAULTS["bankroll"],
    "per_bet_cap": ENV_DEFAULTS["per_bet_cap"],
    "hard_cap_base": ENV_DEFAULTS["hard_cap_base"],
    "hard_cap_k": ENV_DEFAULTS["hard_cap_k"],
    "cluster_threshold": ENV_DEFAULTS["cluster_threshold"],
    "depth_reference": ENV_DEFAULTS["depth_reference"],
    "kappa_initial": ENV_DEFAULTS["kappa_initial"],
    "liquidity": 1500.0,
    "depth": 375.0,
    "margin_method": "shin",
    "xi": dixon_coles.DEFAULT_XI,
    "l2": 1.0,
    "min_fit_matches": 30,
    "warmup": True,
}


def _fields_default(name: str) -> Any:
    return EnvParams.__dataclass_fields__[name].default


class ReplayEnv(gym.Env[np.ndarray, np.ndarray]):
    """Replay of real seasons, one pre-match slate per step (see the module docstring).

    Observation: ``Box`` float32 [n_matches·len(MATCH_COLUMNS) + len(GLOBAL_COLUMNS)],
    columns ``observation_names`` (the simulator's). Action: ``Box`` [-1, 1] of shape
    [n_matches·5]. Reward: Δ log equity (currency units cancel).
    """

    metadata = {"render_modes": []}

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(REPLAY_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown replay options {unknown}; valid: {sorted(REPLAY_DEFAULTS)}")
        config = {**REPLAY_DEFAULTS, **kwargs}
        self.config = config
        if config["price"] not in PRICE_SOURCES:
            raise ValueError(
                f"price: expected one of {sorted(PRICE_SOURCES)}, got {config['price']!r}"
            )
        if config["slate"] not in SLATE_MODES:
            raise ValueError(f"slate: expected one of {SLATE_MODES}, got {config['slate']!r}")
        if config["margin_method"] not in margin.METHODS:
            raise ValueError(
                f"margin_method: expected one of {margin.METHODS}, got {config['margin_method']!r}"
            )
        self.n_matches = int(config["n_matches"])
        if self.n_matches < 1:
            raise ValueError(f"n_matches: expected ≥ 1, got {config['n_matches']!r}")
        for name in ("bankroll", "depth", "liquidity", "depth_reference", "l2"):
            if not float(config[name]) > 0:
                raise ValueError(f"{name}: expected > 0, got {config[name]!r}")
        if int(config["min_fit_matches"]) < 1:
            raise ValueError(f"min_fit_matches: expected ≥ 1, got {config['min_fit_matches']!r}")
        self.bankroll0 = float(config["bankroll"])
        data_dir = Path(config["data_dir"]) if config["data_dir"] is not None else DEFAULT_DATA_DIR

        frame, history = self._load(data_dir, config)
        self.frame = frame
        self._prepare_prices(frame, config)
        self._prepare_slates(frame, config)
        self._prepare_model(frame, history, config)
        self._prepare_steps()

        size = self.n_matches * len(MATCH_COLUMNS) + len(GLOBAL_COLUMNS)
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.n_matches * SELECTIONS,), np.float32)
        self.observation_names = [
            *(f"m{i}_{c}" for i in range(self.n_matches) for c in MATCH_COLUMNS),
            *GLOBAL_COLUMNS,
        ]
        self._project = jax.jit(_project)
        self._step_index = 0
        self._cash = self.bankroll0
        self._peak = self.bankroll0
        self._open: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, stakes, odds)
        self._started = False

    # ------------------------------------------------------------------ construction

    @staticmethod
    def _load(data_dir: Path, config: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(selected seasons' matches, all results usable as history incl. warm-up)."""
        seasons = config["seasons"]
        frame = load_league(data_dir, config["league"], seasons, require_stats=False)
        history = frame
        if config["warmup"]:
            first = min(frame["season"].unique(), key=season_start_year)
            year = season_start_year(first) - 1
            previous = normalize_season(f"{year % 100:02d}{(year + 1) % 100:02d}")
            if (data_dir / previous / f"{str(config['league']).upper()}.csv").is_file():
                warm = load_league(data_dir, config["league"], previous, require_stats=False)
                history = pd.concat([warm, frame], ignore_index=True)
        return frame.reset_index(drop=True), history.reset_index(drop=True)

    def _prepare_prices(self, frame: pd.DataFrame, config: dict[str, Any]) -> None:
        prefix = PRICE_SOURCES[config["price"]]
        for season, rows in frame.groupby("season"):
            for side in _SELECTION_SUFFIX[:3]:
                column = f"{prefix}_{side}"
                if rows[column].isna().all():
                    raise DataError(
                        f"{rows['source_file'].iloc[0]}: season {season!r} has no "
                        f"{config['price']!r} pre-match 1X2 prices (column {column!r}, "
                        f"accepted headers: {', '.join(ODDS_COLUMNS[column])}); "
                        f"valid price sources: {sorted(PRICE_SOURCES)}"
                    )

        def block(pre: str) -> np.ndarray:
            return np.stack(
                [frame[f"{pre}_{s}"].to_numpy(np.float64) for s in _SELECTION_SUFFIX], axis=1
            )

        odds = block(prefix)
        average = block("odds_avg")
        odds = np.where(np.isfinite(odds), odds, average)
        # A market is priced only when all of its selections are.
        priced = np.zeros_like(odds, dtype=bool)
        priced[:, :3] = np.isfinite(odds[:, :3]).all(1, keepdims=True)
        priced[:, 3:] = np.isfinite(odds[:, 3:]).all(1, keepdims=True)
        self.odds = np.where(priced, odds, np.nan)
        self.priced = priced
        closing = block(f"{prefix}_close")
        self.closing = np.where(np.isfinite(closing), closing, block("odds_pinnacle_close"))
        method = config["margin_method"]
        implied = np.full_like(odds, np.nan)
        safe = np.where(priced, odds, 2.0)
        implied[:, :3] = np.asarray(margin.implied_probabilities(safe[:, :3], method))
        implied[:, 3:] = np.asarray(margin.implied_probabilities(safe[:, 3:], method))
        self.implied = np.where(priced, implied, np.nan)
        inverse = np.where(priced, 1.0 / safe, 0.0)
        self.overround = np.stack(
            [
                np.where(priced[:, 0], inverse[:, :3].sum(1) - 1.0, 0.0),
                np.where(priced[:, 3], inverse[:, 3:].sum(1) - 1.0, 0.0),
            ],
            axis=1,
        )
        self.goals = frame[["home_goals", "away_goals"]].to_numpy(np.int64)

    def _prepare_slates(self, frame: pd.DataFrame, config: dict[str, Any]) -> None:
        """Rows grouped into slates (date order), each with its first day (decision day)."""
        dates = frame["date"].to_numpy("datetime64[D]")
        days = np.unique(dates)
        slate_of_day: dict[np.datetime64, int] = {}
        starts: list[np.datetime64] = []
        window = np.timedelta64(int(config["round_days"]), "D")
        for day in days:
            if config["slate"] == "snapshot":
                start = snapshot_day(day)
                if not starts or starts[-1] != start:
                    starts.append(start)
            elif config["slate"] == "date" or not starts or day - starts[-1] >= window:
                starts.append(day)
            slate_of_day[day] = len(starts) - 1
        self.slate_of_row = np.array([slate_of_day[d] for d in dates], np.int64)
        self.slate_start = starts

    def _prepare_model(
        self, frame: pd.DataFrame, history: pd.DataFrame, config: dict[str, Any]
    ) -> None:
        """Per row: model probabilities [N, 5] and pre-match features [N, k], past only.

        One Dixon–Coles fit per slate, all slates solved in vmapped batches over one
        design: every team of the loaded files (the fixture list is public; a team with
        no past match is held at 0 by the ridge ``l2`` and never used: it gets the
        promoted-team fallback) and every history match, a match on or after the slate's
        first day having weight 0 and NaN goals, so it carries no information.
        """
        n = len(frame)
        self.model = np.array(self.implied, copy=True)
        self.features = np.zeros((n, len(PRE_MATCH_FEATURE_NAMES)), np.float64)
        hist_dates = history["date"].to_numpy("datetime64[D]")
        hist_home = history["home_team"].to_numpy(object)
        hist_away = history["away_team"].to_numpy(object)
        hist_goals = history[["home_goals", "away_goals"]].to_numpy(np.float64)
        teams = sorted(set(hist_home) | set(hist_away))
        index = {team: i for i, team in enumerate(teams)}
        home_idx = np.array([index[t] for t in hist_home], np.int32)
        away_idx = np.array([index[t] for t in hist_away], np.int32)
        pasts = [hist_dates < start for start in self.slate_start]
        fitted = [int(p.sum()) >= int(config["min_fit_matches"]) for p in pasts]
        fits = _past_only_fits(
            home_idx,
            away_idx,
            hist_goals,
            hist_dates,
            [s for s, ok in zip(self.slate_start, fitted, strict=True) if ok],
            [p for p, ok in zip(pasts, fitted, strict=True) if ok],
            len(teams),
            float(config["xi"]),
            float(config["l2"]),
        )
        fit_iter = iter(fits)
        rates: list[tuple[int, float, float, float]] = []
        for slate, past in enumerate(pasts):
            rows = np.flatnonzero(self.slate_of_row == slate)
            fit = next(fit_iter) if fitted[slate] else None
            seen = set(hist_home[past]) | set(hist_away[past])
            strengths: dict[str, tuple[float, float]] = {}
            fallback = (0.0, 0.0)
            if fit is not None:
                known = [index[t] for t in sorted(seen)]
                attack, defence = fit.attack, fit.defence
                strengths = {t: (float(attack[index[t]]), float(defence[index[t]])) for t in seen}
                fallback = (
                    float(np.quantile(attack[known], 0.25)),
                    float(np.quantile(defence[known], 0.75)),
                )
            for row in rows:
                home, away = frame["home_team"].iat[row], frame["away_team"].iat[row]
                h_att, h_def = strengths.get(home, fallback)
                a_att, a_def = strengths.get(away, fallback)
                form_h = _form(home, past, hist_home, hist_away, hist_goals)
                form_a = _form(away, past, hist_home, hist_away, hist_goals)
                h2h = _head_to_head(home, away, past, hist_home, hist_away, hist_goals)
                self.features[row] = (
                    h_att, h_def, a_att, a_def, form_h[0], form_a[0], form_h[1], form_a[1], *h2h
                )  # fmt: skip
                if fit is not None:
                    rates.append(
                        (
                            int(row),
                            float(fit.intercept + fit.home_advantage + h_att + a_def),
                            float(fit.intercept + a_att + h_def),
                            float(fit.rho),
                        )
                    )
        if rates:
            rows_fitted, log_home, log_away, rho = (np.array(v) for v in zip(*rates, strict=True))
            self.model[rows_fitted] = _model_probability(log_home, log_away, rho)
        # Without a fit the model echoes the market; without a price either: 1/3, 1/2.
        no_info = ~np.isfinite(self.model)
        uniform = np.broadcast_to(np.array([1 / 3, 1 / 3, 1 / 3, 0.5, 0.5]), self.model.shape)
        self.model = np.where(no_info, uniform, self.model)
        self.implied = np.where(np.isfinite(self.implied), self.implied, self.model)

    def _prepare_steps(self) -> None:
        """Steps = slates split into chunks of ≤ n_matches rows; static obs parts cached."""
        m = self.n_matches
        self.steps: list[tuple[int, np.ndarray, bool]] = []
        for slate in range(len(self.slate_start)):
            rows = np.flatnonzero(self.slate_of_row == slate)
            for begin in range(0, len(rows), m):
                chunk = rows[begin : begin + m]
                self.steps.append((slate, chunk, begin + m >= len(rows)))
        config = self.config
        self.row_depth = np.where(self.priced, float(config["depth"]), 0.0)
        # Signals on the single pre-match tick, for every row at once.
        depth_reference = float(config["depth_reference"])
        flat = jnp.zeros(self.row_depth.shape, jnp.float32)
        edge = jnp.asarray(self.model - self.implied, jnp.float32)[..., None]
        vsnr = signals.vsnr(edge)  # one value: no noise estimate → 0
        sigma = signals.vsnr_sigma(vsnr[..., None])
        depth_ratio = signals.depth_ratio(jnp.asarray(self.row_depth), depth_reference)
        conf_w = signals.confidence_weight(flat, flat, depth_ratio, config["kappa_initial"])
        decay = signals.time_decay(jnp.zeros(self.row_depth.shape[:1]))
        corridor = signals.corridor_liq(sigma, float(config["liquidity"]), depth_reference)
        cas = signals.critical_action_signal(vsnr, decay[:, None], conf_w, corridor)
        self._row_signals = {
            "vsnr": np.clip(np.asarray(vsnr, np.float64), -10.0, 10.0),
            "depth_ratio": np.asarray(depth_ratio, np.float64),
            "conf_w": np.asarray(conf_w, np.float64),
            "cas": np.clip(np.asarray(cas, np.float64), -10.0, 10.0),
            "decay": np.asarray(decay, np.float64),
        }
        probability = np.tile(np.array([1 / 3, 1 / 3, 1 / 3, 0.5, 0.5]), (len(self.steps), m, 1))
        depth = np.zeros((len(self.steps), m, SELECTIONS))
        for i, (_, rows, _) in enumerate(self.steps):
            probability[i, : len(rows)] = self.implied[rows]
            depth[i, : len(rows)] = self.row_depth[rows]
        risk = jax.jit(jax.vmap(_risk_terms, in_axes=(0, None, None, None, None, None)))
        corr, clusters, n_eff, lam, cap = risk(
            jnp.asarray(probability, jnp.float32),
            float(config["hard_cap_base"]),
            float(config["hard_cap_k"]),
            float(config["cluster_threshold"]),
            float(_fields_default("risk_base")),
            float(_fields_default("mode_multipliers")[signals.NEUTRAL]),
        )
        self._static: list[dict[str, Any]] = [
            {
                "rows": rows,
                "depth": depth[i],
                "corr": corr[i],
                "clusters": clusters[i],
                "columns": self._slot_columns(rows, depth[i]),
                "risk": np.array([float(n_eff[i]), float(lam[i]), float(cap[i])]),
            }
            for i, (_, rows, _) in enumerate(self.steps)
        ]

    def _expected_return(self, rows: np.ndarray) -> np.ndarray:
        """p_model × odds − 1 per selection, as ``functional.expected_return`` (0 unpriced)."""
        odds = self.odds[rows]
        value = np.asarray(functional.expected_return(self.model[rows], odds), np.float64)
        return np.where(np.isfinite(odds), value, 0.0)

    def _slot_columns(self, rows: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Per-slot columns [M, len(MATCH_COLUMNS)]; depth in currency (scaled per step)."""
        m, k = self.n_matches, len(rows)
        depth_reference = float(self.config["depth_reference"])
        values: dict[str, np.ndarray] = {
            "pre_match": np.ones(k),
            "liquidity": np.full(k, float(self.config["liquidity"]) / depth_reference),
            "decay": self._row_signals["decay"][rows],
            "overround_1x2": self.overround[rows, 0],
            "overround_ou25": self.overround[rows, 1],
        }
        per_selection = {
            "market_probability": self.implied[rows],
            "depth": depth[:k],
            "model_probability": self.model[rows],
            "expected_return": self._expected_return(rows),
            **{
                name: self._row_signals[name][rows]
                for name in ("vsnr", "depth_ratio", "conf_w", "cas")
            },
        }
        for name, array in per_selection.items():
            for j, selection in enumerate(SELECTION_NAMES):
                values[f"{name}_{selection}"] = array[:, j]
        for j, name in enumerate(PRE_MATCH_FEATURE_NAMES):
            values[name] = self.features[rows, j]
        table = np.zeros((m, len(MATCH_COLUMNS)), np.float64)
        for c, column in enumerate(MATCH_COLUMNS):
            if column in values:
                table[:k, c] = values[column]
            elif column not in _ZERO_AT_KICK_OFF:
                raise NotImplementedError(f"replay: no pre-match value for column {column!r}")
        return table

    # ------------------------------------------------------------------ episode

    def _equity(self) -> float:
        return self._cash + sum(float(stakes.sum()) for _, stakes, _ in self._open)

    def _observation(self) -> np.ndarray:
        index = min(self._step_index, len(self.steps) - 1)
        static = self._static[index]
        table = np.array(static["columns"], copy=True)
        equity = self._equity()
        bankroll = max(equity, 1e-6)
        depth_columns = [MATCH_COLUMNS.index(f"depth_{s}") for s in SELECTION_NAMES]
        table[:, depth_columns] = static["depth"] / bankroll
        globals_ = np.concatenate(
            [
                [equity / self.bankroll0, 1.0 - equity / max(self._peak, 1e-6), 0.0],
                np.eye(len(signals.MODE_NAMES))[signals.NEUTRAL],
                static["risk"],
                [float(self.config["kappa_initial"]), self._step_index / len(self.steps)],
            ]
        )
        obs = np.concatenate([table.reshape(-1), globals_]).astype(np.float32)
        return np.clip(
            np.nan_to_num(obs, nan=0.0, posinf=OBS_BOUND, neginf=-OBS_BOUND), -OBS_BOUND, OBS_BOUND
        )

    def _pre_match_info(self) -> dict[str, Any]:
        index = min(self._step_index, len(self.steps) - 1)
        rows = self.steps[index][1]
        features = np.zeros((self.n_matches, len(PRE_MATCH_FEATURE_NAMES)), np.float32)
        features[: len(rows)] = self.features[rows]
        slate = self.steps[index][0]
        return {
            "pre_match_features": features,
            "pre_match_feature_names": PRE_MATCH_FEATURE_NAMES,
            "next_date": str(self.slate_start[slate]),
            "step_index": self._step_index,
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Back to the first slate with the starting bankroll (the replay is deterministic)."""
        super().reset(seed=seed)
        self._step_index = 0
        self._cash = self.bankroll0
        self._peak = self.bankroll0
        self._open = []
        self._started = True
        return self._observation(), self._pre_match_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._step_index >= len(self.steps):
            raise RuntimeError("episode is over: call reset()")
        action = validate_action(action, self.action_space.shape)
        slate, rows, last_chunk = self.steps[self._step_index]
        static = self._static[self._step_index]
        m, k = self.n_matches, len(rows)
        equity_before = self._equity()
        open_total = equity_before - self._cash
        stakes, proposed = self._project(
            jnp.asarray(action),
            jnp.float32(self._cash),
            jnp.float32(open_total),
            static["corr"],
            static["clusters"],
            jnp.asarray(static["depth"].reshape(-1), jnp.float32),
            jnp.float32(self.config["per_bet_cap"]),
            jnp.float32(self.config["hard_cap_base"]),
            jnp.float32(self.config["hard_cap_k"]),
        )
        stakes = np.asarray(stakes, np.float64).reshape(m, SELECTIONS)
        odds = np.ones((m, SELECTIONS))
        odds[:k] = np.where(self.priced[rows], self.odds[rows], 1.0)
        self._cash -= float(stakes.sum())
        self._open.append((rows, stakes[:k], odds[:k]))

        bet_pnl = np.zeros((m, SELECTIONS))
        results = np.full((m, 2), -1, np.int64)
        settled_pnl = 0.0
        if last_chunk:  # settle the whole slate after its last step
            for open_rows, open_stakes, open_odds in self._open:
                won = np.asarray(outcome_indicators_np(self.goals[open_rows]))
                payout = open_stakes * open_odds * won
                settled_pnl += float((payout - open_stakes).sum())
                self._cash += float(payout.sum())
                if open_rows is rows:
                    bet_pnl[:k] = payout - open_stakes
            results[:k] = self.goals[rows]
            self._open = []
        equity = self._equity()
        self._peak = max(self._peak, equity)
        reward = float(np.log(max(equity, 1e-6)) - np.log(max(equity_before, 1e-6)))
        # No NaN in info (the env checkers compare infos): 0 plus a validity mask.
        closing = np.zeros((m, SELECTIONS))
        closing[:k] = np.nan_to_num(self.closing[rows], nan=0.0)
        clv_valid = (stakes > 0) & (closing > 1.0)
        clv = np.where(clv_valid, odds / np.where(closing > 1.0, closing, 1.0) - 1.0, 0.0)
        teams = [(self.frame["home_team"].iat[r], self.frame["away_team"].iat[r]) for r in rows]
        info: dict[str, Any] = {
            "stakes": stakes,
            "proposed_stakes": np.asarray(proposed, np.float64).reshape(m, SELECTIONS),
            "odds": odds,
            "closing_odds": closing,
            "clv": clv,
            "clv_valid": clv_valid,
            "settled": bool(last_chunk),
            "bet_pnl": bet_pnl,
            "settled_pnl": settled_pnl,
            "results": results,
            "date": str(self.slate_start[slate]),
            "teams": teams,
            "equity": equity,
            "cash": self._cash,
            "drawdown": 1.0 - equity / max(self._peak, 1e-6),
        }
        self._step_index += 1
        bankrupt = equity < 1e-3 * self.bankroll0
        terminated = bankrupt or self._step_index >= len(self.steps)
        info.update(self._pre_match_info())
        return self._observation(), reward, bool(terminated), False, info

    @property
    def num_steps(self) -> int:
        """Steps in one episode (slates, split where larger than ``n_matches``)."""
        return len(self.steps)


# ---------------------------------------------------------------------- helpers


def snapshot_day(day: Any) -> np.datetime64:
    """The day football-data collected the pre-match odds of a fixture played on ``day``
    (a date; its SOURCE notes: Friday afternoon for Friday–Monday fixtures, Tuesday
    afternoon for Tuesday–Thursday ones), before any of those fixtures kicked off."""
    days = int(np.asarray(day, "datetime64[D]").astype(np.int64))  # since 1970-01-01
    weekday = (days + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    return np.datetime64(days - _DAYS_SINCE_SNAPSHOT[weekday], "D")


def outcome_indicators_np(goals: np.ndarray) -> np.ndarray:
    """Winning selections [n, 5] (0/1) from full-time goals [n, 2] (home, away)."""
    home, away = goals[:, 0], goals[:, 1]
    total = home + away
    return np.stack([home > away, home == away, home < away, total >= 3, total < 3], 1).astype(
        np.float64
    )


def _points(goals_for: np.ndarray, goals_against: np.ndarray) -> np.ndarray:
    return np.where(goals_for > goals_against, 3.0, np.where(goals_for == goals_against, 1.0, 0.0))


def _form(
    team: str, past: np.ndarray, home: np.ndarray, away: np.ndarray, goals: np.ndarray
) -> tuple[float, float]:
    """(mean points, mean goal difference) over the team's last ≤ 5 past matches; 0 if none."""
    rows = np.flatnonzero(past & ((home == team) | (away == team)))[-5:]
    if rows.size == 0:
        return 0.0, 0.0
    at_home = home[rows] == team
    scored = np.where(at_home, goals[rows, 0], goals[rows, 1])
    conceded = np.where(at_home, goals[rows, 1], goals[rows, 0])
    return float(_points(scored, conceded).mean()), float((scored - conceded).mean())


def _head_to_head(
    team: str, other: str, past: np.ndarray, home: np.ndarray, away: np.ndarray, goals: np.ndarray
) -> tuple[float, float]:
    """(mean points of ``team`` over the last ≤ 3 past meetings with ``other``, count)."""
    meeting = ((home == team) & (away == other)) | ((home == other) & (away == team))
    rows = np.flatnonzero(past & meeting)[-3:]
    if rows.size == 0:
        return 0.0, 0.0
    at_home = home[rows] == team
    scored = np.where(at_home, goals[rows, 0], goals[rows, 1])
    conceded = np.where(at_home, goals[rows, 1], goals[rows, 0])
    return float(_points(scored, conceded).mean()), float(rows.size)


#: Columns that are 0 before kick-off (counts, momentum, rolling windows, exposure).
_ZERO_AT_KICK_OFF = frozenset(
    {
        "minute", "score_home", "score_away", "shots_home", "shots_away",
        "shots_on_target_home", "shots_on_target_away", "corners_home", "corners_away",
        "fouls_home", "fouls_away", "yellow_cards_home", "yellow_cards_away",
        "red_cards_home", "red_cards_away", "momentum_home", "momentum_away", "suspended",
        "momentum_corr", "vol_idx", *(f"exposure_{s}" for s in SELECTION_NAMES),
    }
)  # fmt: skip


def _risk_terms(
    probability: jax.Array,
    hard_cap_base: float,
    hard_cap_k: float,
    cluster_threshold: float,
    risk_base: float,
    mode_mult: float,
) -> tuple[jax.Array, ...]:
    """(corr, clusters, N_eff, λ, Hard-Cap) of an empty portfolio on one slate [M, 5]."""
    corr = functional.selection_correlation(probability)
    zeros = jnp.zeros(corr.shape[0], jnp.float32)
    n_eff = portfolio.effective_bets(zeros, corr)
    lam = portfolio.risk_multiplier(
        risk_base, mode_mult, portfolio.average_correlation(corr, zeros)
    )
    cap = portfolio.hard_cap(hard_cap_base, n_eff, hard_cap_k)
    clusters = portfolio.correlation_clusters(corr, cluster_threshold)
    return corr, clusters, n_eff, lam, cap


def _past_only_fits(
    home_idx: np.ndarray,
    away_idx: np.ndarray,
    goals: np.ndarray,
    dates: np.ndarray,
    starts: list[np.datetime64],
    pasts: list[np.ndarray],
    n_teams: int,
    xi: float,
    l2: float,
) -> list[dixon_coles.DixonColesFit]:
    """Dixon–Coles fits, one per (start, past mask), in date order, one compiled solver.

    Same likelihood, design and solver as ``dixon_coles.fit_dixon_coles``
    (``prepare_design`` / ``newton_solve`` / ``split_params``); only the per-fit weights
    and goals differ.
    """
    if not starts:
        return []
    fits: list[dixon_coles.DixonColesFit] = []
    design_j = ridge_j = None
    z = None
    with dixon_coles.float64_mode():
        for start, past in zip(starts, pasts, strict=True):
            weights = np.where(
                past, dixon_coles.time_weights(dates.astype("datetime64[ns]"), start, xi), 0.0
            )
            masked = np.where(past[:, None], goals, np.nan)
            (design, counts, ridge), z0 = dixon_coles.prepare_design(
                home_idx,
                away_idx,
                masked[:, 0],
                masked[:, 1],
                weights,
                n_teams,
                integer_counts=True,
                joint=True,
                l2=l2,
            )
            if design_j is None:  # the same for every fit: transferred once
                design_j = jnp.asarray(design, jnp.float64)
                ridge_j = jnp.asarray(ridge, jnp.float64)
            # Warm start from the previous (earlier, past-only) fit: fewer Newton steps.
            z_j, _, _, _ = dixon_coles.newton_solve(
                jnp.asarray(z0 if z is None else z, jnp.float64),
                design_j,
                jnp.asarray(counts, jnp.float64),
                ridge_j,
                jnp.asarray(1e-7, jnp.float64),
                jnp.asarray(50, jnp.int32),
            )
            z = np.asarray(z_j, np.float64)
            attack, defence, intercept, home = dixon_coles.split_params(z, n_teams)
            fits.append(
                dixon_coles.DixonColesFit(
                    attack=attack,
                    defence=defence,
                    home_advantage=home,
                    rho=float(z[2 * n_teams]),
                    intercept=intercept,
                )
            )
    return fits


def _model_probability(log_home: np.ndarray, log_away: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Dixon–Coles 1X2 and O/U 2.5 probabilities [n, 5] from log goal rates and ρ [n]."""
    matrix = np.asarray(
        dixon_coles.score_matrix_from_rates(np.exp(log_home), np.exp(log_away), rho), np.float64
    )
    matrix = matrix / matrix.sum(axis=(-2, -1), keepdims=True)
    home = np.tril(matrix, -1).sum(axis=(-2, -1))
    draw = np.trace(matrix, axis1=-2, axis2=-1)
    away = np.triu(matrix, 1).sum(axis=(-2, -1))
    grid = np.add.outer(np.arange(matrix.shape[-2]), np.arange(matrix.shape[-1]))
    over = (matrix * (grid >= 3)).sum(axis=(-2, -1))
    return np.stack([home, draw, away, over, 1.0 - over], axis=-1)


def _project(
    action: jax.Array,
    cash: jax.Array,
    open_total: jax.Array,
    corr: jax.Array,
    clusters: jax.Array,
    depth: jax.Array,
    per_bet_cap: jax.Array,
    hard_cap_base: jax.Array,
    hard_cap_k: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The simulator's ``action_to_stakes`` on a replay slate (no open bets in its slots).

    → (stakes [M·5], proposed [M·5]) in currency.
    """
    bankroll = jnp.maximum(cash + open_total, 0.0)
    safe = jnp.maximum(bankroll, 1e-6)
    proposed = jnp.maximum(jnp.clip(action, -1.0, 1.0), 0.0) * per_bet_cap * bankroll
    n_eff = portfolio.effective_bets(proposed, corr)
    cap = portfolio.hard_cap(hard_cap_base, n_eff, hard_cap_k)
    total_cap = jnp.maximum(cap - open_total / safe, 0.0)
    stakes = portfolio.project_stakes(proposed, safe, per_bet_cap, total_cap, clusters, depth)
    stakes = jnp.minimum(stakes, cash * stakes / jnp.maximum(stakes.sum(), 1e-9))
    return stakes, proposed


def make_replay(
    league: str = "E0",
    seasons: Sequence[str | int] | str | int | None = None,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> ReplayEnv:
    """``ReplayEnv`` with the common arguments spelled out."""
    return ReplayEnv(league=league, seasons=seasons, data_dir=data_dir, **kwargs)


__all__ = [
    "PRE_MATCH_FEATURE_NAMES",
    "PRICE_SOURCES",
    "REPLAY_DEFAULTS",
    "ReplayEnv",
    "make_replay",
]
