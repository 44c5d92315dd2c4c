"""Hydra entry points: config validation, a tiny train → evaluate → export → onnxruntime
run, the offline W&B run's files, and the stress table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from experiments.config import validate

CONF = Path(__file__).resolve().parents[2] / "conf"


def config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def test_defaults_compose_and_validate() -> None:
    for entry in ("train", "evaluate", "stress", "export"):
        validate(config(entry, []))


def test_typo_in_a_key_is_an_error() -> None:
    with pytest.raises(Exception, match=r"per_bet_capp"):
        config("train", ["env.per_bet_capp=0.1"])
    with pytest.raises(Exception, match=r"leage"):
        config("train", ["market.leage=E0"])
    with pytest.raises(ValueError, match=r"market: unknown keys \['leage'\]"):
        validate(config("train", ["+market.leage=E0"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.name=dqn", r"agent.name: unknown algorithm 'dqn'; valid: jax_ppo, ppo"),
        ("+agent.hyperparameters.learning_rat=0.1", r"unknown keys \['learning_rat'\]"),
        ("logger.mode=cloud", r"logger.mode: 'cloud'; valid: offline"),
        ("evaluation.baselines=[kelly]", r"evaluation.baselines: unknown \['kelly'\]"),
        ("regimes=[calm,storm]", r"regimes: unknown \['storm'\]"),
        ("+regime.crowd_size=3", r"regime config: unknown keys \['crowd_size'\]"),
        ("agent.hyperparameters.num_minibatches=5", r"agent.num_minibatches: must divide"),
    ],
)
def test_bad_values_are_named(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate(config("evaluate", [override]))


def test_unknown_regime_option_is_an_error() -> None:
    with pytest.raises(Exception, match=r"storm"):
        config("evaluate", ["regime=storm"])


@pytest.mark.slow
def test_train_evaluate_export_end_to_end(tmp_path: Path) -> None:
    from experiments.evaluate import evaluate
    from experiments.export import export
    from policies.export import onnx_host_policy

    out = tmp_path / "run"
    cfg = config("evaluate", ["experiment=smoke", f"out_dir={out}"])
    document = evaluate(cfg)
    results = json.loads((out / "results.json").read_text())
    assert results["regime"] == "calm"
    assert set(results["policies"]) == {"jax_ppo", "no_bet", "flat_value", "oracle_kelly"}
    for metrics in results["policies"].values():
        for key in (
            "log_growth",
            "roi",
            "max_drawdown",
            "sharpe",
            "sortino",
            "var95",
            "cvar95",
            "turnover",
            "clv",
        ):
            assert set(metrics[key]) >= {"mean", "ci95"}
    assert results["best_baseline"] in {"no_bet", "flat_value"}
    assert "jax_ppo" in results["paired_vs_best_baseline"]
    assert document["policies"]["no_bet"]["log_growth"]["mean"] == 0.0
    for plot in ("equity", "drawdown", "stake_by_minute", "cas_at_bet"):
        assert (out / f"{plot}.png").stat().st_size > 10_000
    assert "![equity](equity.png)" in (out / "report.md").read_text()

    # W&B offline: the run's files hold the evaluation metrics and the training curve.
    from experiments.tracking import read_offline_run

    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert runs, "no offline W&B run"
    logged = read_offline_run(runs[-1])
    growth = logged["summary"]["jax_ppo/log_growth"]
    assert growth == pytest.approx(results["policies"]["jax_ppo"]["log_growth"]["mean"])
    assert any("train/episode_log_growth" in row for row in logged["history"])

    # Export → onnxruntime agrees with the JAX policy.
    onnx_path = tmp_path / "policy.onnx"
    difference = export(out / "checkpoint", onnx_path)
    assert difference <= 1e-5
    policy = onnx_host_policy(onnx_path, "onnx")
    actions = policy.function(
        np.zeros(
            (3, json.loads((out / "checkpoint" / "metadata.json").read_text())["observation_size"]),
            np.float32,
        )
    )
    assert actions.shape == (3, 10) and np.all(np.abs(actions) <= 1.0)


@pytest.mark.slow
def test_stress_table(tmp_path: Path) -> None:
    from experiments.stress import stress

    out = tmp_path / "stress"
    cfg = config(
        "stress",
        [
            "experiment=smoke",
            f"out_dir={out}",
            "logger=none",
            "regimes=[calm,biased_crowd]",
            "evaluation.baselines=[no_bet,oracle_kelly]",
        ],
    )
    document = stress(cfg)
    assert set(document["regimes"]) == {"calm", "biased_crowd"}
    table = (out / "stress.md").read_text()
    assert "| biased_crowd | oracle_kelly |" in table
    assert json.loads((out / "stress.json").read_text())["regimes"]["calm"]["no_bet"]


def test_export_command_needs_its_arguments() -> None:
    """The Hydra entry point composes its config and names what is missing."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "experiments.export"],
        capture_output=True,
        text=True,
        cwd=CONF.parent,
        timeout=300,
    )
    assert result.returncode != 0
    assert "give checkpoint=DIR and out=FILE.onnx" in result.stderr + result.stdout
