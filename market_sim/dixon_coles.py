"""Time-weighted Dixon–Coles team strengths and log-linear event rates, fitted in JAX.

Model (Dixon & Coles 1997), match m with home team i and away team j::

    log λ_m = intercept + home_advantage + attack[i] + defence[j]   (home goals x)
    log μ_m = intercept + attack[j] + defence[i]                    (away goals y)
    P(x, y) = τ(x, y; λ, μ, ρ) · Poisson(x; λ) · Poisson(y; μ)

with τ(0,0) = 1 − λμρ, τ(0,1) = 1 + λρ, τ(1,0) = 1 + μρ, τ(1,1) = 1 − ρ and τ = 1
otherwise. ``defence`` is a log multiplier of the goals a team *concedes* (higher =
worse defence). Identifiability: ``sum(attack) == 0`` and ``sum(defence) == 0``, so
``exp(intercept)`` is the away goal rate between two average teams. (penaltyblog uses
``sum(attack) == n_teams`` and no intercept; the fitted λ, μ are the same.)

The weighted log-likelihood (weights ``w_m``, e.g. ``time_weights``) is maximised by a
damped Newton method with the exact Hessian (per-match 3×3 blocks from ``jax.hessian``
through a dense design matrix), jitted and run in float64 whatever the global
``jax_enable_x64`` setting; the fitted values are returned as NumPy float64 arrays. The
dense design (n_matches × 3 × ~2·n_teams) suits a league or a few seasons (tens of teams,
thousands of matches), not hundreds of teams at once.

``fit_log_linear_rates`` is the same model without τ (independent Poissons), used for
event counts per team (shots, corners, fouls, cards): ``for_strength`` plays the role of
``attack`` and ``against_strength`` that of ``defence``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import struct
from jax.scipy.special import gammaln

#: Default time-decay rate per day (Dixon & Coles 1997 fit ξ = 0.0065 per *half-week*;
#: 0.0018 per day is penaltyblog's default): half-life ln 2 / 0.0018 ≈ 385 days.
DEFAULT_XI = 0.0018

# Matches are padded (with zero weight) to a multiple of _PAD and parameters (with inert
# dummies) to a multiple of _PAD_PARAMS, so that leagues and seasons of slightly different
# size share one compiled solver.
_PAD = 256
_PAD_PARAMS = 16
# τ is floored here before the log, as in penaltyblog, so that a trial step of the line
# search that makes τ ≤ 0 gives a huge loss instead of NaN.
_TAU_FLOOR = 1e-10


@struct.dataclass
class DixonColesFit:
    """Fitted Dixon–Coles model; log-scale parameters (see the module docstring).

    ``attack``/``defence``: [n_teams] float64, each summing to 0. ``home_advantage``,
    ``intercept``: log goal-rate terms; ``rho``: the low-score dependence (dimensionless).
    ``log_likelihood`` is the weighted log-likelihood (with the ``log x!`` terms) at the
    optimum; ``converged``: max |gradient| ≤ tolerance after ``n_iterations`` Newton steps.
    """

    attack: Any
    defence: Any
    home_advantage: Any
    rho: Any
    intercept: Any
    log_likelihood: float = struct.field(pytree_node=False, default=math.nan)
    converged: bool = struct.field(pytree_node=False, default=False)
    n_iterations: int = struct.field(pytree_node=False, default=0)
    gradient_norm: float = struct.field(pytree_node=False, default=math.nan)


@struct.dataclass
class RatesFit:
    """Fitted log-linear Poisson event rates per team (no τ).

    ``for_strength``/``against_strength``: [n_teams] float64 log multipliers of the count a
    team produces / concedes, each summing to 0; ``home_advantage``, ``intercept``: log-rate
    terms (``exp(intercept)`` = away count per match between two average teams).
    """

    for_strength: Any
    against_strength: Any
    home_advantage: Any
    intercept: Any
    log_likelihood: float = struct.field(pytree_node=False, default=math.nan)
    converged: bool = struct.field(pytree_node=False, default=False)
    n_iterations: int = struct.field(pytree_node=False, default=0)
    gradient_norm: float = struct.field(pytree_node=False, default=math.nan)


# --------------------------------------------------------------------------- weights


def time_weights(dates: Any, reference_date: Any = None, xi: float = DEFAULT_XI) -> np.ndarray:
    """Dixon–Coles time-decay weights exp(−ξ · days before ``reference_date``), [n] float64.

    ``xi`` is per day (default 0.0018: half-life ≈ 385 days); ``reference_date`` defaults
    to the latest date. Matches after the reference date get weight 0 (not yet played).
    Days are whole days, as in penaltyblog's ``dixon_coles_weights``.
    """
    stamps = pd.to_datetime(pd.Series(dates)).to_numpy(dtype="datetime64[ns]")
    reference = (
        stamps.max() if reference_date is None else pd.Timestamp(reference_date).to_datetime64()
    )
    days = np.floor((reference - stamps) / np.timedelta64(1, "D")).astype(np.float64)
    weights = np.exp(-xi * days)
    weights[days < 0] = 0.0
    return weights


# --------------------------------------------------------------------------- model core


def _log_rates(
    attack: jax.Array,
    defence: jax.Array,
    intercept: jax.Array,
    home: jax.Array,
    home_idx: jax.Array,
    away_idx: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    log_home = intercept + home + attack[home_idx] + defence[away_idx]
    log_away = intercept + attack[away_idx] + defence[home_idx]
    return log_home, log_away


def _tau(x: jax.Array, y: jax.Array, lam: jax.Array, mu: jax.Array, rho: jax.Array) -> jax.Array:
    """Dixon–Coles low-score correction τ(x, y), elementwise."""
    return jnp.select(
        [(x == 0) & (y == 0), (x == 0) & (y == 1), (x == 1) & (y == 0), (x == 1) & (y == 1)],
        [1.0 - lam * mu * rho, 1.0 + lam * rho, 1.0 + mu * rho, 1.0 - rho],
        jnp.ones_like(lam),
    )


def _match_loss(u: jax.Array, counts: jax.Array) -> jax.Array:
    """Negative log-likelihood of one match; u = (log λ, log μ[, ρ]), counts = (x, y, w_h, w_a)."""
    x, y, w_home, w_away = counts[0], counts[1], counts[2], counts[3]
    lam, mu = jnp.exp(u[0]), jnp.exp(u[1])
    ll = w_home * (x * u[0] - lam - gammaln(x + 1.0))
    ll += w_away * (y * u[1] - mu - gammaln(y + 1.0))
    if u.shape[0] == 3:
        ll += w_home * jnp.log(jnp.maximum(_tau(x, y, lam, mu, u[2]), _TAU_FLOOR))
    return -ll


@jax.jit
def newton_solve(
    z0: jax.Array,
    design: jax.Array,
    counts: jax.Array,
    ridge: jax.Array,
    tol: jax.Array,
    max_iter: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Damped Newton with Armijo backtracking; returns (z, loss, max|grad|, iterations).

    The jitted solver behind every fit, public so that callers solving many related
    problems (same design, other weights or goals, e.g. ``envs.replay``'s past-only
    refits) can reuse one compiled program and warm-start from a previous ``z``. Run it
    inside ``float64_mode()`` with float64 arrays, as ``fit_dixon_coles`` does.
    ``z0``: [P] start (from ``prepare_design``); ``tol`` (max |gradient|) and
    ``max_iter`` are arrays too (no recompilation when they change).
    ``design``: [n_matches, k, P], the local parameters u_m = design_m @ z (k = 2 log
    rates, plus ρ for Dixon–Coles); ``counts``: [n_matches, 4] (x, y, w_home, w_away);
    ``ridge``: [P, P] quadratic penalty matrix (loss += ½ zᵀ ridge z). The Hessian is
    exact: Σ_m design_mᵀ ∇²ℓ_m design_m + ridge.
    """
    local_grad = jax.vmap(jax.grad(_match_loss))
    local_hess = jax.vmap(jax.hessian(_match_loss))
    eye = jnp.eye(z0.shape[0], dtype=z0.dtype)

    def loss(z: jax.Array) -> jax.Array:
        u = design @ z
        return jnp.sum(jax.vmap(_match_loss)(u, counts)) + 0.5 * z @ ridge @ z

    def grad(z: jax.Array) -> jax.Array:
        g_local = local_grad(design @ z, counts)
        return jnp.einsum("mkp,mk->p", design, g_local) + ridge @ z

    Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

    def not_done(carry: Carry) -> jax.Array:
        _, _, g, it = carry
        return (jnp.max(jnp.abs(g)) > tol) & (it < max_iter)

    def newton_step(carry: Carry) -> Carry:
        z, f, g, it = carry
        h_local = local_hess(design @ z, counts)
        h = jnp.einsum("mkp,mkl,mlq->pq", design, h_local, design) + ridge
        # Shift the Hessian until it is positive definite (far from the optimum the τ
        # term can make the loss locally non-convex); Cholesky gives NaN otherwise.
        scale = jnp.max(jnp.abs(jnp.diag(h))) + 1.0

        def not_positive_definite(state: tuple[jax.Array, jax.Array]) -> jax.Array:
            return ~jnp.all(jnp.isfinite(state[1]))

        def grow_shift(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            shift = jnp.maximum(4.0 * state[0], 1e-8 * scale)
            return shift, jnp.linalg.cholesky(h + shift * eye)

        _, factor = jax.lax.while_loop(
            not_positive_definite, grow_shift, (jnp.zeros(()), jnp.linalg.cholesky(h))
        )
        direction = -jax.scipy.linalg.cho_solve((factor, True), g)
        slope = jnp.dot(g, direction)

        def shrink(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            t, _ = state
            return t * 0.5, loss(z + 0.5 * t * direction)

        def too_long(state: tuple[jax.Array, jax.Array]) -> jax.Array:
            t, f_new = state
            return ~(f_new <= f + 1e-4 * t * slope) & (t > 1e-10)

        t, f_new = jax.lax.while_loop(too_long, shrink, (jnp.ones(()), loss(z + direction)))
        accepted = f_new <= f + 1e-4 * t * slope
        z_new = jnp.where(accepted, z + t * direction, z)
        f_new = jnp.where(accepted, f_new, f)
        # A rejected step means no further progress is possible at this precision.
        it_new = jnp.where(accepted, it + 1, max_iter)
        return z_new, f_new, grad(z_new), it_new

    carry: Carry = (z0, loss(z0), grad(z0), jnp.zeros((), dtype=max_iter.dtype))
    z, f, g, it = jax.lax.while_loop(not_done, newton_step, carry)
    return z, f, jnp.max(jnp.abs(g)), it


def prepare_design(
    home_idx: Any,
    away_idx: Any,
    home_counts: Any,
    away_counts: Any,
    weights: Any,
    n_teams: int,
    *,
    integer_counts: bool,
    joint: bool,
    l2: float,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Check inputs (concrete, raising ``ValueError`` naming the field); build the problem.

    Returns ((design, counts, ridge), start) for ``newton_solve``: ``design`` [N, k, P]
    (k = 2 log rates, + ρ when ``joint``), ``counts`` [N, 4] (x, y, w_home, w_away),
    ``ridge`` [P, P], ``start`` [P]; matches padded to a multiple of ``_PAD`` and
    parameters to a multiple of ``_PAD_PARAMS`` (read the fitted values back with
    ``split_params``). The design depends only on the fixtures, ``n_teams`` and ``joint``, so
    problems that differ only in weights or goals share it. A NaN count gives that side's
    row zero weight (both sides when ``joint``, i.e. for the τ-coupled Dixon–Coles
    likelihood, which then also fits ρ).
    """
    if int(n_teams) != n_teams or n_teams < 2:
        raise ValueError(f"n_teams: expected an integer >= 2, got {n_teams!r}")
    h = np.asarray(home_idx)
    a = np.asarray(away_idx)
    x = np.asarray(home_counts, dtype=np.float64)
    y = np.asarray(away_counts, dtype=np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), x.shape).copy()
    if h.ndim != 1:
        raise ValueError(f"home_idx: expected a 1-D array of team indices, got shape {h.shape}")
    n = h.shape[0]
    for name, arr in (("away_idx", a), ("home_counts", x), ("away_counts", y), ("weights", w)):
        if arr.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},) like home_idx, got {arr.shape}")
    if n < 1:
        raise ValueError("home_idx: expected at least one match")
    for name, arr in (("home_idx", h), ("away_idx", a)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: expected integer team indices, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= n_teams)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{name}: expected values in [0, {n_teams}), got {arr[i]} at index {i}"
            )
    same = h == a
    if same.any():
        i = int(np.argmax(same))
        raise ValueError(f"home_idx, away_idx: team {h[i]} plays itself at index {i}")
    bad_w = ~np.isfinite(w) | (w < 0)
    if bad_w.any():
        i = int(np.argmax(bad_w))
        raise ValueError(f"weights: expected finite values >= 0, got {w[i]!r} at index {i}")
    w_home, w_away = w.copy(), w.copy()
    for name, arr, mine in (("home_counts", x, w_home), ("away_counts", y, w_away)):
        finite = np.isfinite(arr)
        bad = finite & ((arr < 0) | ((arr != np.round(arr)) if integer_counts else False))
        if bad.any():
            i = int(np.argmax(bad))
            kind = "non-negative integers" if integer_counts else "non-negative values"
            raise ValueError(f"{name}: expected {kind}, got {arr[i]!r} at index {i}")
        mine[~finite] = 0.0
    if joint:
        both = np.isfinite(x) & np.isfinite(y)
        w_home[~both] = 0.0
        w_away[~both] = 0.0
    x, y = np.nan_to_num(x), np.nan_to_num(y)
    if w_home.sum() <= 0 or w_away.sum() <= 0:
        raise ValueError("weights: no match with positive weight and a finite count")
    if l2 <= 0:
        seen = np.zeros(n_teams, dtype=bool)
        seen[h[(w_home > 0) | (w_away > 0)]] = True
        seen[a[(w_home > 0) | (w_away > 0)]] = True
        if not seen.all():
            missing = np.flatnonzero(~seen)
            raise ValueError(
                f"n_teams: teams {missing[:10].tolist()} have no match with positive weight; "
                "their strengths are not identified (drop them or pass l2 > 0)"
            )
    k = n_teams - 1
    size = -(-n // _PAD) * _PAD  # padding rows: all-zero design, zero weight
    # Team strengths are C @ free values: the last team is minus the sum of the others.
    constraint = np.vstack([np.eye(k), -np.ones((1, k))])
    n_params = 2 * k + 2 + int(joint)
    # Dummy parameters: no design column, unit ridge, start at 0 -> they stay at 0.
    padded_params = -(-n_params // _PAD_PARAMS) * _PAD_PARAMS
    design = np.zeros((size, 2 + int(joint), padded_params))
    design[:n, 0, :k] = constraint[h]
    design[:n, 0, k : 2 * k] = constraint[a]
    design[:n, 1, :k] = constraint[a]
    design[:n, 1, k : 2 * k] = constraint[h]
    design[:n, :2, 2 * k] = 1.0  # intercept
    design[:n, 0, 2 * k + 1] = 1.0  # home advantage
    if joint:
        design[:n, 2, 2 * k + 2] = 1.0  # rho
    counts = np.zeros((size, 4))
    counts[:n] = np.column_stack([x, y, w_home, w_away])
    ridge = np.zeros((padded_params, padded_params))
    block = l2 * constraint.T @ constraint
    ridge[:k, :k] = block
    ridge[k : 2 * k, k : 2 * k] = block
    ridge[n_params:, n_params:] = np.eye(padded_params - n_params)
    home_mean = float(np.sum(w_home * x) / np.sum(w_home))
    away_mean = float(np.sum(w_away * y) / np.sum(w_away))
    start = np.zeros(padded_params)
    start[2 * k] = math.log(max(away_mean, 1e-3))
    start[2 * k + 1] = math.log(max(home_mean, 1e-3) / max(away_mean, 1e-3))
    return (design, counts, ridge), start


def float64_mode() -> contextlib.AbstractContextManager[Any]:
    """Context in which JAX traces and computes in float64 (``jax.enable_x64`` or, in
    JAX < 0.5, ``jax.experimental.enable_x64``)."""
    switch: Any = getattr(jax, "enable_x64", None)
    if switch is None:  # pragma: no cover - older JAX
        switch = importlib.import_module("jax.experimental").enable_x64
    context: contextlib.AbstractContextManager[Any] = switch(True)
    return context


def _solve(
    problem: tuple[np.ndarray, ...], start: np.ndarray, *, tol: float, max_iter: int
) -> tuple[np.ndarray, float, float, int]:
    """Run the jitted Newton solver in float64; returns (z, loss, max|grad|, iterations)."""
    design, counts, ridge = problem
    with float64_mode():
        z, f, g, it = newton_solve(
            jnp.asarray(start, dtype=jnp.float64),
            jnp.asarray(design, dtype=jnp.float64),
            jnp.asarray(counts, dtype=jnp.float64),
            jnp.asarray(ridge, dtype=jnp.float64),
            jnp.asarray(tol, dtype=jnp.float64),
            jnp.asarray(max_iter, dtype=jnp.int32),
        )
        return np.asarray(z, dtype=np.float64), float(f), float(g), int(it)


def split_params(z: Any, n_teams: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(attack [n_teams], defence [n_teams], intercept, home_advantage) from a solver
    vector ``z`` (``newton_solve``; the last team's strengths are minus the sum of the
    others'). ρ of a Dixon–Coles fit is ``z[2 * n_teams]``."""
    z = np.asarray(z, dtype=np.float64)
    k = n_teams - 1
    attack = np.concatenate([z[:k], [-z[:k].sum()]])
    defence = np.concatenate([z[k : 2 * k], [-z[k : 2 * k].sum()]])
    return attack, defence, float(z[2 * k]), float(z[2 * k + 1])


# The former private names, kept as aliases for code written against them.
_newton = newton_solve
_prepare = prepare_design
_float64 = float64_mode
_split_params = split_params


# --------------------------------------------------------------------------- fitting


def fit_dixon_coles(
    home_idx: Any,
    away_idx: Any,
    home_goals: Any,
    away_goals: Any,
    weights: Any,
    n_teams: int,
    *,
    l2: float = 0.0,
    tol: float = 1e-7,
    max_iter: int = 50,
) -> DixonColesFit:
    """Weighted maximum-likelihood Dixon–Coles fit.

    Inputs are [n_matches]: team indices in [0, n_teams), goals (non-negative integers;
    NaN drops the match), weights ≥ 0 (e.g. ``time_weights``; a scalar broadcasts).
    ``l2`` adds 0.5·l2·(Σattack² + Σdefence²) to the loss (a Gaussian prior; 0 = plain
    MLE). ``tol``: max |gradient| of the negative log-likelihood at convergence.
    """
    problem, start = prepare_design(
        home_idx, away_idx, home_goals, away_goals, weights, n_teams,
        integer_counts=True, joint=True, l2=l2,
    )  # fmt: skip
    z, loss, gradient, iterations = _solve(problem, start, tol=tol, max_iter=max_iter)
    attack, defence, intercept, home = split_params(z, n_teams)
    return DixonColesFit(
        attack=attack,
        defence=defence,
        home_advantage=home,
        rho=float(z[2 * n_teams]),
        intercept=intercept,
        log_likelihood=-loss,
        converged=bool(gradient <= tol),
        n_iterations=iterations,
        gradient_norm=gradient,
    )


def fit_log_linear_rates(
    home_idx: Any,
    away_idx: Any,
    home_counts: Any,
    away_counts: Any,
    weights: Any,
    n_teams: int,
    *,
    l2: float = 0.01,
    tol: float = 1e-7,
    max_iter: int = 50,
) -> RatesFit:
    """Weighted Poisson fit of per-team event rates (shots, corners, fouls, cards, …).

    log E[home count] = intercept + home_advantage + for[i] + against[j];
    log E[away count] = intercept + for[j] + against[i]. Inputs are [n_matches]; counts
    are non-negative (need not be integers, e.g. expected goals) and NaN drops that side
    of that match only. The default ``l2 = 0.01`` keeps rare events finite (a team with
    no red cards would otherwise have log-rate −∞) and barely moves frequent ones.
    """
    problem, start = prepare_design(
        home_idx, away_idx, home_counts, away_counts, weights, n_teams,
        integer_counts=False, joint=False, l2=l2,
    )  # fmt: skip
    z, loss, gradient, iterations = _solve(problem, start, tol=tol, max_iter=max_iter)
    for_strength, against_strength, intercept, home = split_params(z, n_teams)
    return RatesFit(
        for_strength=for_strength,
        against_strength=against_strength,
        home_advantage=home,
        intercept=intercept,
        log_likelihood=-loss,
        converged=bool(gradient <= tol),
        n_iterations=iterations,
        gradient_norm=gradient,
    )


def _league_arrays(
    frame: pd.DataFrame, reference_date: Any, xi: float
) -> tuple[pd.DataFrame, list[str], np.ndarray, np.ndarray, np.ndarray]:
    for column in ("date", "home_team", "away_team"):
        if column not in frame.columns:
            raise ValueError(f"frame: missing column {column!r} (use market_sim.data.load_league)")
    dates = pd.to_datetime(frame["date"])
    reference = dates.max() if reference_date is None else pd.Timestamp(reference_date)
    played = frame[(dates <= reference).to_numpy()]
    if played.empty:
        raise ValueError(f"reference_date: no match on or before {reference.date()}")
    teams = sorted(set(played["home_team"]) | set(played["away_team"]))
    index = {team: i for i, team in enumerate(teams)}
    home_idx = played["home_team"].map(index).to_numpy(dtype=np.int32)
    away_idx = played["away_team"].map(index).to_numpy(dtype=np.int32)
    weights = time_weights(played["date"], reference, xi)
    return played, teams, home_idx, away_idx, weights


def fit_league(
    frame: pd.DataFrame,
    xi: float = DEFAULT_XI,
    reference_date: Any = None,
    *,
    l2: float = 0.0,
) -> tuple[DixonColesFit, list[str]]:
    """Dixon–Coles fit over a ``load_league`` frame, time-weighted towards ``reference_date``.

    Uses matches on or before ``reference_date`` (default: the last date); returns the fit
    and the team names (sorted; position = index into ``attack``/``defence``).
    """
    played, teams, home_idx, away_idx, weights = _league_arrays(frame, reference_date, xi)
    fit = fit_dixon_coles(
        home_idx,
        away_idx,
        played["home_goals"].to_numpy(dtype=np.float64),
        played["away_goals"].to_numpy(dtype=np.float64),
        weights,
        len(teams),
        l2=l2,
    )
    return fit, teams


def fit_league_rates(
    frame: pd.DataFrame,
    home_column: str,
    away_column: str,
    xi: float = DEFAULT_XI,
    reference_date: Any = None,
    *,
    l2: float = 0.01,
) -> tuple[RatesFit, list[str]]:
    """``fit_log_linear_rates`` over a ``load_league`` frame, e.g. ``home_shots``/``away_shots``.

    Same match selection, weights and team order as ``fit_league``; NaN counts are skipped.
    """
    for column in (home_column, away_column):
        if column not in frame.columns:
            raise ValueError(f"frame: missing column {column!r}")
    played, teams, home_idx, away_idx, weights = _league_arrays(frame, reference_date, xi)
    fit = fit_log_linear_rates(
        home_idx,
        away_idx,
        played[home_column].to_numpy(dtype=np.float64),
        played[away_column].to_numpy(dtype=np.float64),
        weights,
        len(teams),
        l2=l2,
    )
    return fit, teams


# --------------------------------------------------------------------------- prediction


def predict_rates(fit: DixonColesFit | RatesFit, home_idx: Any, away_idx: Any) -> tuple[Any, Any]:
    """Expected counts (λ_home, μ_away) per match; broadcasting over the index arrays.

    Pure ``jnp`` (jit/vmap-able; ``fit`` is a pytree); results have JAX's default float
    dtype (float32 unless x64 is enabled).
    """
    if isinstance(fit, DixonColesFit):
        attack, defence = jnp.asarray(fit.attack), jnp.asarray(fit.defence)
    else:
        attack, defence = jnp.asarray(fit.for_strength), jnp.asarray(fit.against_strength)
    log_home, log_away = _log_rates(
        attack,
        defence,
        jnp.asarray(fit.intercept),
        jnp.asarray(fit.home_advantage),
        jnp.asarray(home_idx),
        jnp.asarray(away_idx),
    )
    return jnp.exp(log_home), jnp.exp(log_away)


def score_matrix_from_rates(home_rate: Any, away_rate: Any, rho: Any, max_goals: int = 10) -> Any:
    """Dixon–Coles score probabilities, [..., max_goals+1, max_goals+1] (rows: home goals).

    Not renormalised: the mass beyond ``max_goals`` is missing (τ itself keeps the total
    at 1 on the untruncated grid).
    """
    lam = jnp.asarray(home_rate)[..., None]
    mu = jnp.asarray(away_rate)[..., None]
    goals = jnp.arange(max_goals + 1)
    home_pmf = jnp.exp(goals * jnp.log(lam) - lam - gammaln(goals + 1.0))
    away_pmf = jnp.exp(goals * jnp.log(mu) - mu - gammaln(goals + 1.0))
    matrix = home_pmf[..., :, None] * away_pmf[..., None, :]
    lam, mu, rho = lam[..., 0], mu[..., 0], jnp.asarray(rho)
    matrix = matrix.at[..., 0, 0].multiply(1.0 - lam * mu * rho)
    matrix = matrix.at[..., 0, 1].multiply(1.0 + lam * rho)
    matrix = matrix.at[..., 1, 0].multiply(1.0 + mu * rho)
    return matrix.at[..., 1, 1].multiply(1.0 - rho)


def score_matrix(fit: DixonColesFit, home: Any, away: Any, max_goals: int = 10) -> Any:
    """Score probabilities for team indices ``home`` v ``away``, [..., G+1, G+1] (G = max_goals)."""
    home_rate, away_rate = predict_rates(fit, home, away)
    return score_matrix_from_rates(home_rate, away_rate, fit.rho, max_goals)


def outcome_probabilities(fit: DixonColesFit, home: Any, away: Any, max_goals: int = 10) -> Any:
    """P(home win), P(draw), P(away win) as [..., 3], normalised over the truncated grid."""
    matrix = score_matrix(fit, home, away, max_goals)
    matrix = matrix / jnp.sum(matrix, axis=(-2, -1), keepdims=True)
    home_win = jnp.sum(jnp.tril(matrix, k=-1), axis=(-2, -1))
    draw = jnp.trace(matrix, axis1=-2, axis2=-1)
    away_win = jnp.sum(jnp.triu(matrix, k=1), axis=(-2, -1))
    return jnp.stack([home_win, draw, away_win], axis=-1)
