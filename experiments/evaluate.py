"""Evaluate a learned policy against every baseline on the same held-out seeds.

    python -m experiments.evaluate [experiment=quality_biased_crowd] [out_dir=DIR] \\
        [policy.checkpoint=DIR_OR_ONNX] [train=true]

Without ``policy.checkpoint`` it first trains the configured agent (``experiments.train``)
then evaluates that policy (named after the agent: ``jax_ppo``, ``ppo``, …) and the
baselines (``agents.baselines``) with common random numbers (``agents.evaluation``).
Writes ``DIR/results.json``, ``DIR/report.md`` with PNG plots, logs everything to W&B
(offline by default) and prints the comparison table.

``results.json``: ``{"regime", "seeds", "rounds", "policies": {NAME: {METRIC: {"mean",
"ci95": [lo, hi], "n"}}}, "best_baseline", "paired_vs_best_baseline": {NAME: {"mean",
"ci95"}}, "training", "run"}``; metrics as in ``agents.metrics``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from agents.baselines import make_baseline
from agents.evaluation import Trajectories, rollout
from agents.loading import load_policy
from agents.metrics import paired_difference, per_seed, summarise
from agents.policy import Policy
from envs.config import make_params
from envs.functional import EnvParams
from experiments import report, tracking
from experiments.config import env_kwargs, regime_of, to_plain, validate
from experiments.provenance import provenance

#: Never the "best baseline": it reads the hidden oracle.
UPPER_BOUND = "oracle_kelly"


def evaluate_policies(
    policies: list[Policy],
    params: EnvParams,
    seeds: list[int],
    rounds: int,
    bootstrap: int,
) -> tuple[dict[str, Any], dict[str, Trajectories]]:
    """Metrics of every policy on the same seeds, the best baseline and paired differences."""
    trajectories: dict[str, Trajectories] = {}
    seed_metrics: dict[str, dict[str, Any]] = {}
    summaries: dict[str, Any] = {}
    for policy in policies:
        started = time.perf_counter()
        trajectories[policy.name] = rollout(policy, params, seeds, rounds)
        seed_metrics[policy.name] = per_seed(trajectories[policy.name])
        summaries[policy.name] = summarise(seed_metrics[policy.name], bootstrap)
        print(
            f"  {policy.name:14s} log-growth/round "
            f"{summaries[policy.name]['log_growth']['mean']:+.4f}  "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    baselines = [p.name for p in policies if p.baseline and p.name != UPPER_BOUND]
    best = max(baselines, key=lambda n: summaries[n]["log_growth"]["mean"]) if baselines else None
    paired = {}
    if best is not None:
        for name in summaries:
            if name != best:
                paired[name] = paired_difference(
                    seed_metrics[name]["log_growth"], seed_metrics[best]["log_growth"], bootstrap
                )
    document = {
        "seeds": [int(s) for s in seeds],
        "rounds": rounds,
        "policies": summaries,
        "best_baseline": best,
        "paired_vs_best_baseline": paired,
    }
    return document, trajectories


def start_job(config: Any, job: str) -> tuple[Path, Any]:
    """Validate the config, create ``out_dir`` and start the W&B run of ``job``."""
    validate(config)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir, tracking.start(config, out_dir, job=job)


def policies_for(
    config: Any, params: EnvParams, checkpoint: Any, name: str | None = None
) -> list[Policy]:
    """The saved policy (if any) followed by the configured baselines."""
    policies: list[Policy] = []
    if checkpoint is not None:
        policies.append(load_policy(checkpoint, params, name=name))
    return policies + [make_baseline(b) for b in config.evaluation.baselines]


def evaluate(config: Any) -> dict[str, Any]:
    """Train (unless a checkpoint is given), evaluate, write the report; return results."""
    started = time.perf_counter()
    out_dir, run = start_job(config, "evaluate")
    params = make_params(**env_kwargs(config))
    training: dict[str, Any] = {}
    checkpoint = config.policy.checkpoint
    if checkpoint is None and config.train:
        from experiments.train import train

        checkpoint, training = train(config, out_dir, run)
    policies = policies_for(
        config, params, checkpoint, name=config.agent.name if training else None
    )
    print(
        f"evaluating {len(policies)} policies on {len(config.evaluation.seeds)} seeds × "
        f"{config.evaluation.rounds} slates ({regime_of(config).name})",
        flush=True,
    )
    document, trajectories = evaluate_policies(
        policies,
        params,
        list(config.evaluation.seeds),
        int(config.evaluation.rounds),
        int(config.evaluation.bootstrap),
    )
    document = {
        "experiment": config.experiment_name,
        "regime": regime_of(config).name,
        **document,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "training": {k: v for k, v in training.items() if k != "history"},
        "run": {**provenance(), "config": to_plain(config), "seconds": None},
    }
    plots = report.write_plots(out_dir, trajectories)
    document["run"]["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "results.json").write_text(json.dumps(document, indent=2))
    report.write_markdown(out_dir / "report.md", document, plots)
    header, rows = report.comparison_rows(document)
    tracking.log_table(run, "evaluation/comparison", header, rows)
    tracking.log(
        run,
        {
            f"evaluation/{name}/{metric}": value["mean"]
            for name, metrics in document["policies"].items()
            for metric, value in metrics.items()
            if value["mean"] is not None
        },
    )
    tracking.log_images(run, plots)
    if checkpoint is not None and Path(checkpoint).is_dir():
        tracking.log_artifact(run, Path(checkpoint), f"{config.experiment_name}-policy", "model")
    tracking.finish(
        run,
        summary={
            f"{name}/log_growth": metrics["log_growth"]["mean"]
            for name, metrics in document["policies"].items()
        },
    )
    return document


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(config: DictConfig) -> None:
    document = evaluate(config)
    print()
    print(report.text_table(document))
    print(f"\nreport: {(Path(config.out_dir) / 'report.md').resolve()}")


if __name__ == "__main__":
    main()
