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


_WANDB_HEADER = 7  # ":W&B", magic, version
_BLOCK = 32768  # LevelDB-log blocks: 7-byte record headers (crc, length, type)


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """The history rows and final summary of an offline run (``offline-run-*`` folder).

    Reads the run's ``run-*.wandb`` transaction log (LevelDB log framing of W&B's
    protobuf ``Record``s) without any network; e.g. to check what ``wandb sync`` would
    upload. Returns ``{"history": [{key: value}], "summary": {key: value}}``.
    """
    import json
    import struct

    from wandb.proto import wandb_internal_pb2

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    raw = files[0].read_bytes()
    payloads, partial, position = [], b"", _WANDB_HEADER
    while position + 7 <= len(raw):
        left = _BLOCK - position % _BLOCK
        _, length, kind = struct.unpack("<IHB", raw[position : position + 7])
        if left < 7 or (length == 0 and kind == 0):
            position += left  # block trailer / padding
            continue
        data = raw[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 1:  # full
            payloads.append(data)
        elif kind == 2:  # first
            partial = data
        elif kind == 3:  # middle
            partial += data
        elif kind == 4:  # last
            payloads.append(partial + data)
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
        elif kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return {"history": history, "summary": summary}
