"""The compiled train step of the configured parallel mode (jit or pmap).

`jit` (the default) shards each batch over a mesh of every device of every
host and keeps the state replicated; `pmap` runs the same pure step with
explicit cross-device sums (`axis_name`). Either way the caller sees one
`Stepper(state, batch, rng) -> (state, metrics)`.
"""

import functools

import jax

from capjax import parallel


class Stepper:
  """Compiles the train step for the configured parallel mode."""

  def __init__(self, config, step, mesh):
    self.mode = config.parallel.mode
    if self.mode not in parallel.MODES:
      raise ValueError(
          f'config.parallel.mode must be one of {parallel.MODES}; got '
          f'{self.mode!r}.'
      )
    self.mesh = mesh
    if self.mode == 'pmap':
      self._step = jax.pmap(
          functools.partial(step, axis_name=parallel.PMAP_AXIS),
          axis_name=parallel.PMAP_AXIS,
          in_axes=(0, 0, None),
          donate_argnums=(0,),
      )
    else:
      replicated = parallel.replicated_sharding(mesh)
      self._step = jax.jit(
          step,
          in_shardings=(replicated, parallel.data_sharding(mesh), replicated),
          out_shardings=(replicated, replicated),
          donate_argnums=(0,),
      )

  def place_state(self, state):
    if self.mode == 'pmap':
      return parallel.pmap_replicate(state)
    return parallel.replicate(state, self.mesh)

  def host_state(self, state):
    """A state to save: one copy, not one per device."""
    if self.mode == 'pmap':
      return parallel.pmap_unreplicate(state)
    return state

  def place_batch(self, batch: dict) -> dict:
    if self.mode == 'pmap':
      return parallel.pmap_split(batch)
    return parallel.shard_batch(batch, self.mesh)

  def lower(self, state, batch, rng):
    """The step lowered as `__call__` runs it (e.g. to read its program)."""
    if self.mode == 'pmap':
      return self._step.lower(state, batch, rng)
    with jax.set_mesh(self.mesh):
      return self._step.lower(state, batch, rng)

  def __call__(self, state, batch, rng):
    if self.mode == 'pmap':
      state, metrics = self._step(state, batch, rng)
      return state, parallel.pmap_unreplicate(metrics)
    # Traced with the mesh in context, so that the model's loops keep the
    # batch split over the devices (`parallel.constrain_batch`).
    with jax.set_mesh(self.mesh):
      return self._step(state, batch, rng)
