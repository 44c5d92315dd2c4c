"""Stress-test policies in every synthetic regime: one table of metrics, regime × policy.

    python -m experiments.stress [policy.checkpoint=DIR_OR_ONNX] [regimes=[calm,efficient]] \\
        [out_dir=DIR]

Runs the baselines (``evaluation.baselines``) and, when given, the trained policy in each
regime of ``regimes`` (default: all eight) on the same held-out seeds, and writes
``DIR/stress.json`` (``{"regimes": {REGIME: {POLICY: {METRIC: {"mean", "ci95", "n"}}}},
"run": ...}``) and ``DIR/stress.md`` (log-growth, ROI, max drawdown, CVaR95 per cell).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from envs.config import make_params
from experiments import tracking
from experiments.config import env_kwargs, to_plain
from experiments.evaluate import evaluate_policies, policies_for, start_job
from experiments.provenance import provenance
from market_sim.regimes import regime_params

STRESS_METRICS = (
    ("log_growth", "{:+.4f}"),
    ("roi", "{:+.1%}"),
    ("max_drawdown", "{:.1%}"),
    ("cvar95", "{:.1%}"),
)


def stress(config: Any) -> dict[str, Any]:
    """Every regime × every policy; returns the JSON document (also written to disk)."""
    started = time.perf_counter()
    out_dir, run = start_job(config, "stress")
    regimes: dict[str, Any] = {}
    for regime_name in config.regimes:
        params = make_params(**env_kwargs(config, regime=regime_params(regime_name)))
        policies = policies_for(config, params, config.policy.checkpoint)
        print(f"regime {regime_name}:", flush=True)
        document, _ = evaluate_policies(
            policies,
            params,
            list(config.evaluation.seeds),
            int(config.evaluation.rounds),
            int(config.evaluation.bootstrap),
        )
        regimes[regime_name] = document["policies"]
        tracking.log(
            run,
            {
                f"stress/{regime_name}/{policy}/{metric}": values[metric]["mean"]
                for policy, values in document["policies"].items()
                for metric, _ in STRESS_METRICS
                if values[metric]["mean"] is not None
            },
        )
    document = {
        "seeds": list(config.evaluation.seeds),
        "rounds": int(config.evaluation.rounds),
        "checkpoint": config.policy.checkpoint,
        "regimes": regimes,
        "run": {
            **provenance(),
            "config": to_plain(config),
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    (out_dir / "stress.json").write_text(json.dumps(document, indent=2))
    (out_dir / "stress.md").write_text(markdown(document))
    tracking.finish(run)
    return document


def _cell(values: dict[str, Any], metric: str, template: str) -> str:
    mean = values[metric]["mean"]
    return "—" if mean is None else template.format(mean)


def markdown(document: dict[str, Any]) -> str:
    """One table: a row per regime × policy, the stress metrics as columns."""
    header = ["regime", "policy", *[m for m, _ in STRESS_METRICS]]
    lines = [
        "# Stress test: every regime × every policy",
        "",
        f"{len(document['seeds'])} seeds × {document['rounds']} slates per cell, same seeds "
        "everywhere; means over seeds (log-growth per round, ROI, max drawdown, CVaR95).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for regime, policies in document["regimes"].items():
        for policy, values in policies.items():
            cells = [_cell(values, m, t) for m, t in STRESS_METRICS]
            lines.append("| " + " | ".join([regime, policy, *cells]) + " |")
    return "\n".join(lines) + "\n"


@hydra.main(version_base="1.3", config_path="../conf", config_name="stress")
def main(config: DictConfig) -> None:
    document = stress(config)
    print(markdown(document))
    print(f"table: {(Path(config.out_dir) / 'stress.md').resolve()}")


if __name__ == "__main__":
    main()
