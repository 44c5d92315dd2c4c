"""Core signals and market modes (market_sim.signals): SPEC §3–4 formulas, rolling
windows against numpy, hysteresis, batching and the boundary validator."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_sim.signals import (
    COORDINATION,
    FOOTPRINT,
    LEADERSHIP,
    MODE_NAMES,
    NEUTRAL,
    SHAPES,
    RingBuffer,
    calibrate_kappa,
    confidence_weight,
    corridor_liq,
    critical_action_signal,
    depth_ratio,
    loss_mix,
    market_sensitivity,
    momentum_corr,
    ring_init,
    ring_ordered,
    ring_push,
    time_decay,
    update_mode,
    validate_signal_inputs,
    vol_idx,
    vsnr,
    vsnr_sigma,
)

PROPERTY = settings(max_examples=40, deadline=None)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=32)
BATCH = 4096


# ------------------------------------------------------------------------------ Decay


def test_time_decay_reference() -> None:
    assert float(time_decay(85.0)) == pytest.approx(0.5, abs=1e-7)
    assert float(time_decay(0.0)) == pytest.approx(1.0 / (1.0 + np.exp(0.7 * -85.0)), abs=1e-7)
    assert float(time_decay(90.0)) == pytest.approx(1.0 / (1.0 + np.exp(3.5)), rel=1e-6)
    assert float(time_decay(80.0, t_break=80.0, alpha=0.3)) == pytest.approx(0.5)


@PROPERTY
@given(st.floats(0.0, 130.0), st.floats(0.0, 130.0))
def test_time_decay_decreasing(first: float, second: float) -> None:
    early, late = min(first, second), max(first, second)
    d_early, d_late = float(time_decay(early)), float(time_decay(late))
    assert 0.0 <= d_late <= d_early <= 1.0


# ----------------------------------------------------------------------------- Conf_W


def test_confidence_weight_formula() -> None:
    # κ · MC · VI · (1 + DR) = 1.2 · 0.5 · 1.0 · 2 = 1.2
    got = confidence_weight(0.5, 1.0, 1.0, 1.2)
    assert float(got) == pytest.approx(0.4 + 0.6 * np.tanh(1.2), abs=1e-6)
    assert float(confidence_weight(-0.5, 1.0, 1.0, 1.2)) == pytest.approx(0.4)
    assert float(confidence_weight(0.0, 1.0, 1.0, 1.0, shape="sigmoid")) == pytest.approx(0.7)
    assert float(confidence_weight(0.25, 1.0, 1.0, 1.0, shape="linear")) == pytest.approx(0.7)
    assert float(confidence_weight(1.0, 3.0, 3.0, 1.5, shape="linear")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        confidence_weight(0.5, 1.0, 1.0, 1.0, shape="relu")


@PROPERTY
@given(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT, ANY_FLOAT, st.sampled_from(SHAPES))
def test_confidence_weight_in_range_for_any_input(
    corr: float, vol: float, depth: float, kappa: float, shape: str
) -> None:
    got = float(confidence_weight(corr, vol, depth, kappa, shape=shape))
    assert 0.4 <= got <= 1.0


# ---------------------------------------------------------------------------------- κ


def run_kappa(realized: list[float], target: float = 0.1) -> list[float]:
    history = jnp.full(3, 1.0)
    path = []
    for value in realized:
        kappa, history = calibrate_kappa(history, target, value)
        path.append(float(kappa))
    return path


def test_calibrate_kappa_update_and_median() -> None:
    kappa, history = calibrate_kappa(jnp.array([1.0, 1.0, 1.0]), 0.1, 0.5)
    np.testing.assert_allclose(history, [1.0, 1.0, 0.98], atol=1e-7)
    assert float(kappa) == pytest.approx(1.0)  # one step is not yet the median
    kappa, history = calibrate_kappa(history, 0.1, 0.5)  # update from the κ in use, 1.0
    np.testing.assert_allclose(history, [1.0, 0.98, 0.98], atol=1e-6)
    assert float(kappa) == pytest.approx(0.98, abs=1e-6)
    kappa, history = calibrate_kappa(history, 0.1, 0.5)
    np.testing.assert_allclose(history, [0.98, 0.98, 0.96], atol=1e-6)
    assert float(kappa) == pytest.approx(0.98, abs=1e-6)


def test_median_filter_removes_one_step_spike() -> None:
    calm = [0.1] * 8
    spiky = list(calm)
    spiky[3] = 1.0  # one evaluation window with every decision above threshold
    assert run_kappa(spiky) == pytest.approx(run_kappa(calm), abs=1e-7)
    # A sustained change does get through.
    sustained = [0.1] * 3 + [1.0] * 5
    assert run_kappa(sustained)[-1] < 1.0 - 0.05


@PROPERTY
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    st.floats(0.0, 1.0),
    st.floats(0.5, 1.5),
)
def test_kappa_stays_in_bounds(realized: list[float], target: float, start: float) -> None:
    history = jnp.full(3, start)
    for value in realized:
        kappa, history = calibrate_kappa(history, target, value, step=0.3)
        assert 0.5 <= float(kappa) <= 1.5
        assert bool(jnp.all((history >= 0.5) & (history <= 1.5)))


# --------------------------------------------------------------------- rolling windows


def test_ring_buffer_matches_numpy_rolling_window() -> None:
    rng = np.random.default_rng(1)
    window, ticks = 10, 25
    edges, momentum, changes, log_moves = rng.normal(size=(4, ticks)) * [
        [0.02],
        [1],
        [0.01],
        [0.05],
    ]
    changes = changes + 0.004 * momentum  # some real correlation
    buffers = {name: ring_init(window) for name in ("e", "m", "c", "l", "v")}
    for t in range(ticks):
        buffers["e"] = ring_push(buffers["e"], edges[t])
        buffers["m"] = ring_push(buffers["m"], momentum[t])
        buffers["c"] = ring_push(buffers["c"], changes[t])
        buffers["l"] = ring_push(buffers["l"], log_moves[t])
        got_vsnr = vsnr(buffers["e"])
        buffers["v"] = ring_push(buffers["v"], got_vsnr)
        lo = max(0, t + 1 - window)
        e = edges[lo : t + 1]
        expected = 0.0 if len(e) < 2 else e.mean() / (e.std() + 1e-6)
        assert float(got_vsnr) == pytest.approx(expected, rel=1e-4, abs=1e-6)
        if t >= 1:
            expected_corr = np.corrcoef(momentum[lo : t + 1], changes[lo : t + 1])[0, 1]
            assert float(momentum_corr(buffers["m"], buffers["c"])) == pytest.approx(
                expected_corr, abs=1e-4
            )
        expected_vol = np.clip(log_moves[lo : t + 1].std() / 0.04, 0, 3)
        assert float(vol_idx(buffers["l"], 0.04)) == pytest.approx(expected_vol, rel=1e-4)
    assert int(buffers["e"].count) == window
    ordered, valid = ring_ordered(buffers["e"])
    np.testing.assert_allclose(ordered, edges[-window:], rtol=1e-6)
    assert bool(valid.all())
    # σ_VSNR of the history equals the std of the last W VSNR values, floored.
    history = np.asarray(buffers["v"].values)
    assert float(vsnr_sigma(buffers["v"])) == pytest.approx(max(history.std(), 1e-3), rel=1e-4)


def test_window_edge_cases() -> None:
    empty = ring_init(10)
    assert float(vsnr(empty)) == 0.0
    assert float(vsnr_sigma(empty)) == pytest.approx(1e-3)
    assert float(momentum_corr(empty, empty)) == 0.0
    one = ring_push(empty, 0.05)
    assert float(vsnr(one)) == 0.0
    ordered, valid = ring_ordered(ring_push(one, 0.07))
    np.testing.assert_allclose(ordered[-2:], [0.05, 0.07])
    assert valid.tolist() == [False] * 8 + [True, True]
    flat = jnp.ones(10)
    assert float(momentum_corr(flat, jnp.arange(10.0))) == 0.0
    assert float(vol_idx(jnp.array([0.0, 10.0] * 5), 0.01)) == 3.0
    assert float(depth_ratio(500.0, 100.0)) == 3.0
    assert float(depth_ratio(50.0, 100.0)) == pytest.approx(0.5)
    assert float(depth_ratio(-5.0, 100.0)) == 0.0


def test_ring_buffers_with_leading_axes() -> None:
    # One window per (match, outcome), pushed together without vmap.
    buffer = ring_init(4, shape=(2, 3))
    series = np.arange(30, dtype=np.float32).reshape(5, 2, 3) ** 1.5
    for t in range(5):
        buffer = ring_push(buffer, series[t])
    assert buffer.values.shape == (2, 3, 4) and buffer.count.shape == (2, 3)
    expected = series[1:].mean(0) / (series[1:].std(0) + 1e-6)
    np.testing.assert_allclose(vsnr(buffer), expected, rtol=1e-5)
    ordered, valid = ring_ordered(buffer)
    np.testing.assert_allclose(ordered, np.moveaxis(series[1:], 0, -1), rtol=1e-6)
    assert bool(valid.all())


# --------------------------------------------------------------- corridor and CAS


def test_corridor_and_cas() -> None:
    assert float(corridor_liq(0.5, 400.0, 100.0)) == pytest.approx(1.0)
    cas = critical_action_signal(2.0, 0.5, 0.8, 0.4)
    assert float(cas) == pytest.approx(2.0 * 0.5 * 0.8 / 0.4)
    assert float(critical_action_signal(2.0, 0.5, 0.8, 0.4, uncertainty=0.25)) == pytest.approx(
        0.75 * float(cas)
    )
    assert np.isfinite(float(critical_action_signal(2.0, 0.5, 0.8, corridor_liq(0.5, 0.0, 1.0))))


# --------------------------------------------------------------------------- γ, modes


def test_market_sensitivity_sees_a_following_market() -> None:
    rng = np.random.default_rng(2)
    flow = rng.normal(size=50)
    moves = np.zeros(50)
    moves[1:] = 0.01 * flow[:-1]  # the market follows our flow on the next tick
    follow = float(market_sensitivity(jnp.asarray(flow), jnp.asarray(moves), horizon=1))
    assert follow == pytest.approx(1.0, abs=1e-5)
    # Over k = 3 ticks the move also holds two unrelated ticks: about 1/√3.
    gamma = float(market_sensitivity(jnp.asarray(flow), jnp.asarray(moves), horizon=3))
    assert 0.4 < gamma < 0.8
    independent = float(market_sensitivity(jnp.asarray(flow), jnp.asarray(rng.normal(size=50))))
    assert abs(independent) < 0.4
    # Reference: explicit pairs (flow[t], moves[t+1..t+k] summed).
    k = 3
    future = np.array([moves[t + 1 : t + 1 + k].sum() for t in range(50 - k)])
    expected = np.corrcoef(flow[: 50 - k], future)[0, 1]
    assert gamma == pytest.approx(expected, abs=1e-5)


def test_market_sensitivity_on_partial_ring_buffer() -> None:
    rng = np.random.default_rng(3)
    flow_buffer, move_buffer = ring_init(50), ring_init(50)
    flow, moves = rng.normal(size=20), rng.normal(size=20)
    for t in range(20):
        flow_buffer = ring_push(flow_buffer, flow[t])
        move_buffer = ring_push(move_buffer, moves[t])
    future = np.array([moves[t + 1 : t + 4].sum() for t in range(17)])
    expected = np.corrcoef(flow[:17], future)[0, 1]
    assert float(market_sensitivity(flow_buffer, move_buffer)) == pytest.approx(expected, abs=1e-5)
    assert float(market_sensitivity(ring_init(50), ring_init(50))) == 0.0


def test_update_mode_thresholds_and_hysteresis() -> None:
    def step(mode: int, gamma: float, corr: float = 0.5) -> int:
        return int(update_mode(mode, gamma, corr))

    assert step(NEUTRAL, -0.09) == COORDINATION
    assert step(NEUTRAL, -0.07) == NEUTRAL
    assert step(COORDINATION, -0.06) == COORDINATION  # not yet 0.03 past the threshold
    assert step(COORDINATION, -0.04) == NEUTRAL
    assert step(NEUTRAL, 0.53) == LEADERSHIP
    assert step(LEADERSHIP, 0.50) == LEADERSHIP
    assert step(LEADERSHIP, 0.48) == NEUTRAL
    assert step(NEUTRAL, 0.53, corr=0.2) == FOOTPRINT
    assert step(FOOTPRINT, 0.53, corr=0.32) == FOOTPRINT
    assert step(FOOTPRINT, 0.53, corr=0.34) == LEADERSHIP
    assert step(FOOTPRINT, 0.40, corr=0.1) == NEUTRAL
    assert step(COORDINATION, 0.6) == LEADERSHIP
    assert MODE_NAMES[FOOTPRINT] == "footprint"


@PROPERTY
@given(
    st.sampled_from([(-0.08, "gamma"), (0.52, "gamma"), (0.3, "corr")]),
    st.lists(st.floats(-0.0149, 0.0149), min_size=5, max_size=60),
)
def test_update_mode_does_not_chatter(threshold: tuple[float, str], noise: list[float]) -> None:
    centre, which = threshold
    mode = NEUTRAL if which == "gamma" else LEADERSHIP
    switches = 0
    for value in noise:
        gamma, corr = (centre + value, 0.5) if which == "gamma" else (0.6, centre + value)
        new = int(update_mode(mode, gamma, corr))
        switches += int(new != mode)
        mode = new
    assert switches <= 1


def test_loss_mix() -> None:
    internal, market = loss_mix(jnp.array([COORDINATION, NEUTRAL, LEADERSHIP, FOOTPRINT]))
    np.testing.assert_allclose(internal, [0.3, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(market, [0.7, 0.0, 0.0, 0.0], atol=1e-7)
    internal, market = loss_mix(NEUTRAL, internal_weights=(0.3, 0.6, 0.8, 1.0))
    assert float(internal) == pytest.approx(0.6) and float(market) == pytest.approx(0.4)


# --------------------------------------------------------------------------- batching


def test_every_function_on_a_batch_of_4096() -> None:
    rng = np.random.default_rng(4)
    u = jnp.asarray(rng.uniform(size=(6, BATCH)), jnp.float32)
    window = jnp.asarray(rng.normal(size=(BATCH, 10)), jnp.float32)
    vm = partial(jax.vmap)
    minute = 100.0 * u[0]
    assert jax.jit(vm(time_decay))(minute).shape == (BATCH,)
    for shape in SHAPES:
        conf = jax.jit(vm(partial(confidence_weight, shape=shape)))(
            2 * u[0] - 1, 3 * u[1], 3 * u[2], 0.5 + u[3]
        )
        assert bool(jnp.all((conf >= 0.4) & (conf <= 1.0)))
    kappa, history = jax.jit(vm(calibrate_kappa))(jnp.ones((BATCH, 3)), u[0], u[1])
    assert kappa.shape == (BATCH,) and history.shape == (BATCH, 3)

    def push_all(values: jax.Array) -> RingBuffer:
        buffer = ring_init(10)
        for t in range(12):
            buffer = ring_push(buffer, values[t % 10])
        return buffer

    buffers = jax.jit(vm(push_all))(window)
    assert buffers.values.shape == (BATCH, 10)
    for fn in (vsnr, vsnr_sigma):
        assert jax.jit(vm(fn))(buffers).shape == (BATCH,)
    assert jax.jit(vm(momentum_corr))(buffers, window).shape == (BATCH,)
    assert jax.jit(vm(vol_idx))(buffers, 0.5 + u[0]).shape == (BATCH,)
    assert jax.jit(vm(depth_ratio))(u[0], 0.5 + u[1]).shape == (BATCH,)
    assert jax.jit(vm(corridor_liq))(u[0], u[1], 0.5 + u[2]).shape == (BATCH,)
    cas = jax.jit(vm(critical_action_signal))(u[0], u[1], u[2], u[3], u[4] * 0.9)
    assert bool(jnp.all(jnp.isfinite(cas)))
    gamma = jax.jit(vm(market_sensitivity))(buffers, window)
    assert bool(jnp.all(jnp.abs(gamma) <= 1.0))
    modes = jax.jit(vm(update_mode))(jnp.ones(BATCH, jnp.int32), 2 * u[0] - 1, u[1])
    assert set(np.unique(np.asarray(modes))) <= {0, 1, 2, 3}
    internal, market = jax.jit(vm(loss_mix))(modes)
    np.testing.assert_allclose(internal + market, 1.0, atol=1e-6)


# -------------------------------------------------------------------------- validation


def test_validate_signal_inputs() -> None:
    validate_signal_inputs(minute=[0, 45, 93], momentum_corr=[0.2], kappa=1.0, mode=[0, 3])
    with pytest.raises(ValueError, match=r"momentum_corr: .* at index 1"):
        validate_signal_inputs(momentum_corr=[0.2, 1.5])
    with pytest.raises(ValueError, match=r"minute: .*nan"):
        validate_signal_inputs(minute=[1.0, float("nan")])
    with pytest.raises(ValueError, match=r"uncertainty: .*\[0.0, 1.0\)"):
        validate_signal_inputs(uncertainty=1.0)
    with pytest.raises(ValueError, match=r"depth_ref"):
        validate_signal_inputs(depth_ref=0.0)
    with pytest.raises(ValueError, match=r"mode: .* at index 2"):
        validate_signal_inputs(mode=[0, 1, 7])
