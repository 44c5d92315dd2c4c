"""Policy networks over the environment's observation layout (flax, for the JAX trainer).

``MatchwiseActorCritic`` reads the flat observation as M match blocks of
``len(MATCH_COLUMNS)`` columns plus the global columns, and applies one shared MLP to
every match (its own columns + the globals): the same weights price every match, so
the network is equivariant to the order of matches and learns from every match of a
slate at once (M times the data of a flat MLP over the 800-wide vector). Actor: the
mean of a Gaussian per selection (5 per match) and a learned log-std per selection
type. Critic: one value per match, V(s) = Σ_m V_m(s), each from the match's own
columns, the globals and the slate's mean critic embedding (so a trainer can learn from
per-match rewards, or sum the values for the slate's reward).

``ObservationNormaliser`` holds running mean/variance (Welford over batches); the
normalised observation is clip((obs − mean) / sqrt(var + 1e-8), ±10). It is part of
the policy: it is saved with the weights and exported inside the ONNX graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

NORMALISER_CLIP = 10.0
NORMALISER_EPS = 1e-8


@dataclass(frozen=True)
class NetworkConfig:
    """Shapes of ``MatchwiseActorCritic`` (from the environment) and its widths."""

    n_matches: int
    match_width: int
    global_width: int
    selections: int = 5
    hidden: int = 64
    initial_log_std: float = -1.0
    #: Initial bias of the action mean: negative = start by mostly not betting.
    initial_action_bias: float = -0.5


class MatchwiseActorCritic(nn.Module):
    """Shared per-match MLP actor (Gaussian means) and pooled critic; see module doc."""

    config: NetworkConfig

    @nn.compact
    def __call__(self, observation: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        c = self.config
        batch = observation.shape[:-1]
        blocks = observation[..., : c.n_matches * c.match_width].reshape(
            *batch, c.n_matches, c.match_width
        )
        global_values = observation[..., c.n_matches * c.match_width :]
        tiled = jnp.broadcast_to(global_values[..., None, :], (*batch, c.n_matches, c.global_width))
        x = jnp.concatenate([blocks, tiled], axis=-1)
        orthogonal = nn.initializers.orthogonal
        h = nn.tanh(nn.Dense(c.hidden, kernel_init=orthogonal(jnp.sqrt(2.0)), name="actor_0")(x))
        h = nn.tanh(nn.Dense(c.hidden, kernel_init=orthogonal(jnp.sqrt(2.0)), name="actor_1")(h))
        mean = nn.Dense(
            c.selections,
            kernel_init=orthogonal(0.01),
            bias_init=nn.initializers.constant(c.initial_action_bias),
            name="actor_out",
        )(h)
        mean = mean.reshape(*batch, c.n_matches * c.selections)
        log_std = self.param(
            "log_std", nn.initializers.constant(c.initial_log_std), (c.selections,)
        )
        log_std = jnp.tile(log_std, c.n_matches)
        v = nn.tanh(nn.Dense(c.hidden, kernel_init=orthogonal(jnp.sqrt(2.0)), name="critic_0")(x))
        context = jnp.broadcast_to(v.mean(axis=-2, keepdims=True), v.shape)
        v = nn.tanh(
            nn.Dense(c.hidden, kernel_init=orthogonal(jnp.sqrt(2.0)), name="critic_1")(
                jnp.concatenate([v, context], axis=-1)
            )
        )
        value = nn.Dense(1, kernel_init=orthogonal(1.0), name="critic_out")(v)[..., 0]
        return mean, log_std, value  # value: [..., M], one per match


@struct.dataclass
class ObservationNormaliser:
    """Running mean/variance of observations (batched Welford update)."""

    mean: Any
    var: Any
    count: Any

    @classmethod
    def create(cls, size: int) -> ObservationNormaliser:
        return cls(
            mean=jnp.zeros(size, jnp.float32),
            var=jnp.ones(size, jnp.float32),
            count=jnp.float32(1e-4),
        )

    def update(self, batch: jax.Array) -> ObservationNormaliser:
        """Fold a batch [..., size] into the running statistics."""
        flat = batch.reshape(-1, batch.shape[-1])
        batch_mean = flat.mean(axis=0)
        batch_var = flat.var(axis=0)
        n = jnp.float32(flat.shape[0])
        delta = batch_mean - self.mean
        total = self.count + n
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        return ObservationNormaliser(mean=mean, var=m2 / total, count=total)

    def normalise(self, observation: jax.Array) -> jax.Array:
        scaled = (observation - self.mean) / jnp.sqrt(self.var + NORMALISER_EPS)
        return jnp.clip(scaled, -NORMALISER_CLIP, NORMALISER_CLIP)


def deterministic_action(
    network: MatchwiseActorCritic, params: Any, normaliser: ObservationNormaliser, obs: jax.Array
) -> jax.Array:
    """The policy's deterministic action: the Gaussian mean, clipped to [−1, 1]."""
    mean, _, _ = network.apply(params, normaliser.normalise(obs))
    return jnp.clip(mean, -1.0, 1.0)
