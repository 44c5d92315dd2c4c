"""Weights & Biases tracking: offline by default, online when configured, or off.

Offline runs live under ``out_dir/wandb/offline-run-*`` and can be uploaded later with
``wandb sync out_dir/wandb/offline-run-*``. A run logs the resolved config (and the git
commit and package versions), training curves, the evaluation metrics, the report's
plots and the exported policy as an artifact. ``mode: disabled`` logs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from experiments.config import to_plain
from experiments.provenance import provenance


def start(config: Any, out_dir: Path, job: str) -> Any:
    """Start a run for ``job`` (train / evaluate / stress), or None when disabled."""
    if config.logger.mode == "disabled":
        return None
    import wandb

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(
        project=config.logger.project,
        entity=config.logger.entity,
        mode=config.logger.mode,
        dir=str(out_dir),
        job_type=job,
        name=f"{config.experiment_name}-{job}",
        tags=list(config.logger.tags),
        config={**to_plain(config), "provenance": provenance()},
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )


def log(run: Any, values: dict[str, Any]) -> None:
    """Log scalar values (no-op without a run)."""
    if run is not None:
        run.log(values)


def log_images(run: Any, paths: dict[str, Path]) -> None:
    """Log PNG files as images."""
    if run is None:
        return
    import wandb

    run.log({f"plots/{name}": wandb.Image(str(path)) for name, path in paths.items()})


def log_table(run: Any, name: str, columns: list[str], rows: list[list[Any]]) -> None:
    if run is None:
        return
    import wandb

    run.log({name: wandb.Table(columns=columns, data=rows)})


def log_artifact(run: Any, path: Path, name: str, kind: str) -> None:
    """Attach a file or directory (e.g. the ONNX policy) as an artifact."""
    if run is None:
        return
    import wandb

    artifact = wandb.Artifact(name=name, type=kind)
    if Path(path).is_dir():
        artifact.add_dir(str(path))
    else:
        artifact.add_file(str(path))
    run.log_artifact(artifact)


def finish(run: Any, summary: dict[str, Any] | None = None) -> None:
    """Write the summary and close the run."""
    if run is None:
        return
    for key, value in (summary or {}).items():
        run.summary[key] = value
    run.finish()
