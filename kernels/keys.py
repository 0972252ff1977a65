"""Counter-based keys: every random number is a pure function of (seed, trajectory index).

Nothing depends on chunk size, chunk order or device count, so a run is bit-identical
however it is split, and two scenarios run with one seed see the same shocks.
"""
from __future__ import annotations

import jax

# Independent streams under one trajectory key.
PARAMS = 0  # the trajectory's parameter draw (params.sample_params)
ONCE = 1  # events drawn once per trajectory (whether a moratorium happens)
MONTHS = 2  # per-month process noise, folded with the month index
POSTERIOR = 3  # which posterior draw the trajectory uses (calibrated runs)
OBSERVE = 4  # per-month measurement noise of the *_observed outputs, folded with the month
OBSERVE_TAILS = 5  # per-month draws of the heavy-tailed and skewed measurement noise (same)
ADOPTION = 6  # per-month shocks of adoption's diffusion rate and a published edition's shock (same)
ADOPTION_START = 7  # the adoption rate's deviation at the start (drawn once per trajectory)


def trajectory_key(seed_key: jax.Array, index: jax.Array) -> jax.Array:
    """Key of trajectory ``index`` (its global index, not its place in a chunk)."""
    return jax.random.fold_in(seed_key, index)


def stream_key(traj_key: jax.Array, stream: int) -> jax.Array:
    return jax.random.fold_in(traj_key, stream)


def month_key(traj_key: jax.Array, month: jax.Array, stream: int = MONTHS) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(traj_key, stream), month)

SEED_LIMIT = 2**64  # seeds are whole numbers in [0, SEED_LIMIT)


def seed_key(seed: int) -> jax.Array:
    """The run's key from a whole-number seed in [0, 2**64), every bit of it used.

    Below 2**32 it is exactly jax.random.key(seed) (which would silently reduce larger
    seeds mod 2**32); above, the high 32 bits are folded into the key of the low 32 bits,
    so no two seeds share a key."""
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be a whole number in [0, 2**64), got {seed}")
    key = jax.random.key(seed & 0xFFFFFFFF)
    return key if seed < 2**32 else jax.random.fold_in(key, seed >> 32)
