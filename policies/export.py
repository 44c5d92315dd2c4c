"""ONNX export of trained policies, observation normalisation inside the graph.

    export_onnx(checkpoint_dir, Path("policy.onnx"))
    policy = onnx_host_policy(Path("policy.onnx"), "ppo")   # agents.policy.HostPolicy

The graph maps ``observation`` [batch, observation_size] float32 (raw, as the environment
returns it) to ``action`` [batch, action_size] float32 in the action Box, deterministically:

- ``framework == "sb3"`` (``agents.sb3``): VecNormalize's clip((obs − mean)/sqrt(var + ε),
  ±clip_obs), computed in float64 as SB3 does, then the SB3 policy's deterministic action
  (``policy._predict(obs, deterministic=True)``: the Gaussian mean for PPO/A2C, the tanh
  actor for SAC/TD3 — SB3's documented export pattern), then SB3's post-processing:
  clipped to the Box, or unscaled from [−1, 1] for squashed policies. Recurrent PPO is
  not exportable (see ``agents.sb3``).
- ``framework == "jax_ppo"`` (``agents.jax_ppo``): the flax ``MatchwiseActorCritic``
  actor mirrored in torch with the checkpoint's weights (flax kernels [in, out] →
  ``Linear.weight`` transposed), behind the float32 ``ObservationNormaliser``; the
  action is the Gaussian mean clipped to [−1, 1], as ``policies.networks
  .deterministic_action``.

The model's ``metadata_props`` carry ``observation_names`` (JSON list), ``observation_size``,
``action_size``, ``framework``, ``algorithm`` and ``tetra_metadata`` (the checkpoint's
metadata, JSON) so that a reader can check the layout (``onnx_host_policy`` does when
given ``observation_names``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from agents.checkpoint import check_layout, load_jax_policy, load_tensors
from agents.policy import HostPolicy
from policies.networks import NORMALISER_CLIP, NORMALISER_EPS, NetworkConfig

OPSET = 17
INPUT_NAME = "observation"
OUTPUT_NAME = "action"


class Normalise(nn.Module):
    """clip((obs − mean) / sqrt(var + eps), ±clip) in ``mean``'s dtype, returned as float32."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, epsilon: float, clip: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(np.array(mean)))
        self.register_buffer("var", torch.from_numpy(np.array(var)))
        self.epsilon = float(epsilon)
        self.clip = float(clip)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        x = observation.to(self.mean.dtype)
        scaled = (x - self.mean) / torch.sqrt(self.var + self.epsilon)
        return torch.clamp(scaled, -self.clip, self.clip).to(torch.float32)


class SB3Actor(nn.Module):
    """VecNormalize + an SB3 policy's deterministic action + SB3's clip/unscale."""

    def __init__(self, policy: nn.Module, normalise: Normalise) -> None:
        super().__init__()
        self.policy = policy
        self.normalise = normalise
        space = policy.action_space  # type: ignore[attr-defined]
        self.squash = bool(policy.squash_output)  # type: ignore[attr-defined]
        self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        action = self.policy._predict(self.normalise(observation), deterministic=True)  # type: ignore[operator]
        if self.squash:
            return self.low + 0.5 * (action + 1.0) * (self.high - self.low)
        return torch.minimum(torch.maximum(action, self.low), self.high)


class MatchwiseActor(nn.Module):
    """Torch mirror of ``MatchwiseActorCritic``'s actor mean (same ops, same order)."""

    def __init__(self, config: NetworkConfig, normalise: Normalise) -> None:
        super().__init__()
        self.config = config
        self.normalise = normalise
        width = config.match_width + config.global_width
        self.actor_0 = nn.Linear(width, config.hidden)
        self.actor_1 = nn.Linear(config.hidden, config.hidden)
        self.actor_out = nn.Linear(config.hidden, config.selections)

    def load_flax(self, params: Any) -> None:
        """Copy the actor's Dense weights (kernel [in, out] → weight [out, in])."""
        tree = params.get("params", params)
        with torch.no_grad():
            for name in ("actor_0", "actor_1", "actor_out"):
                layer: nn.Linear = getattr(self, name)
                kernel = np.array(tree[name]["kernel"], np.float32)
                bias = np.array(tree[name]["bias"], np.float32)
                if kernel.shape != (layer.in_features, layer.out_features):
                    raise ValueError(
                        f"jax checkpoint: {name}/kernel has shape {kernel.shape}, the network "
                        f"config expects {(layer.in_features, layer.out_features)}"
                    )
                layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
                layer.bias.copy_(torch.from_numpy(bias))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = self.normalise(observation)
        split = c.n_matches * c.match_width
        blocks = x[:, :split].reshape(-1, c.n_matches, c.match_width)
        tiled = x[:, split:].unsqueeze(1).repeat(1, c.n_matches, 1)
        h = torch.cat([blocks, tiled], dim=-1)
        h = torch.tanh(self.actor_0(h))
        h = torch.tanh(self.actor_1(h))
        mean = self.actor_out(h).reshape(-1, c.n_matches * c.selections)
        return torch.clamp(mean, -1.0, 1.0)


def sb3_module(checkpoint_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """(torch module: normalisation + deterministic SB3 action, metadata)."""
    from agents.sb3 import load_sb3_policy

    policy, normaliser, metadata = load_sb3_policy(checkpoint_dir)
    if metadata["algorithm"] == "recurrent_ppo":
        raise NotImplementedError(
            "recurrent_ppo checkpoints are not exported to ONNX: the graph would need the LSTM "
            "state and episode starts as inputs/outputs; use agents.sb3.sb3_host_policy"
        )
    normalise = Normalise(normaliser.mean, normaliser.var, normaliser.epsilon, normaliser.clip_obs)
    return SB3Actor(policy, normalise).eval(), metadata


def jax_module(checkpoint_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """(torch mirror of the JAX PPO actor with its normaliser, metadata)."""
    params, normaliser, config, metadata = load_jax_policy(checkpoint_dir)
    normalise = Normalise(
        np.asarray(normaliser.mean, np.float32),
        np.asarray(normaliser.var, np.float32),
        NORMALISER_EPS,
        NORMALISER_CLIP,
    )
    module = MatchwiseActor(config, normalise)
    module.load_flax(params)
    return module.eval(), metadata


def policy_module(checkpoint_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exportable torch module of a checkpoint, dispatched on ``metadata["framework"]``."""
    _, metadata = load_tensors(Path(checkpoint_dir))
    framework = metadata.get("framework")
    if framework == "sb3":
        return sb3_module(checkpoint_dir)
    if framework == "jax_ppo":
        return jax_module(checkpoint_dir)
    raise ValueError(
        f"checkpoint {checkpoint_dir}: framework {framework!r}, expected 'sb3' or 'jax_ppo'"
    )


def _metadata_props(metadata: dict[str, Any]) -> dict[str, str]:
    return {
        "observation_names": json.dumps(list(metadata["observation_names"])),
        "observation_size": str(metadata["observation_size"]),
        "action_size": str(metadata["action_size"]),
        "framework": str(metadata.get("framework")),
        "algorithm": str(metadata.get("algorithm", metadata.get("framework"))),
        "tetra_metadata": json.dumps(metadata),
    }


def _export(module: nn.Module, example: torch.Tensor, out_path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(out_path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def export_onnx(checkpoint_dir: Path, out_path: Path) -> Path:
    """Write ``checkpoint_dir``'s deterministic policy as ONNX to ``out_path``; see module doc."""
    module, metadata = policy_module(Path(checkpoint_dir))
    observation_size = int(metadata["observation_size"])
    example = torch.zeros((2, observation_size), dtype=torch.float32)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # SB3 builds a torch Normal for the Gaussian mean; argument validation would put a
    # data-dependent Python branch in the trace, so it is off while exporting.
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        _export(module, example, out_path)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
    model = onnx.load(str(out_path))
    for key, value in _metadata_props(metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return out_path


def onnx_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an exported policy."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX policy {path}: no such file")
    model = onnx.load(str(path), load_external_data=False)
    return {entry.key: entry.value for entry in model.metadata_props}


def onnx_host_policy(
    path: Path, name: str, observation_names: list[str] | None = None
) -> HostPolicy:
    """A ``HostPolicy`` running the exported graph with onnxruntime (CPU).

    With ``observation_names``, the graph's recorded layout must match
    (``agents.checkpoint.check_layout``).
    """
    path = Path(path)
    props = onnx_metadata(path)
    if observation_names is not None:
        if "observation_names" not in props:
            raise ValueError(f"ONNX policy {path}: no observation_names in its metadata")
        check_layout(
            {"observation_names": json.loads(props["observation_names"])}, observation_names
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )

    def act(observation: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(observation, dtype=np.float32)
        return session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    return HostPolicy(name, act)
