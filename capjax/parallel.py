"""Device mesh, batch sharding, multi-host start-up and the pmap path.

The default path is `jax.jit` over a one-axis `Mesh` of every device of every
host: parameters are replicated, each batch is split along its leading axis.
Each host feeds its own slice of the global batch
(`jax.make_array_from_process_local_data`), so the same code runs on a laptop,
on 8 fake CPU devices and on a pod. `pmap` is kept for users who ask for it
(`config.parallel.mode = 'pmap'`); it runs the same pure step with explicit
cross-device sums.
"""

import os
from collections.abc import Callable
from typing import Any

from absl import logging
from flax import jax_utils
import jax
import jax.numpy as jnp
import numpy as np

DATA_AXIS = 'data'
PMAP_AXIS = 'batch'
MODES = ('jit', 'pmap')


def initialize_distributed(
    coordinator_address: str = '',
    num_processes: int = 0,
    process_id: int = -1,
) -> None:
  """Starts multi-host JAX when asked to (a no-op for a single process).

  Either the arguments or the environment (`CAPJAX_COORDINATOR`,
  `CAPJAX_NUM_PROCESSES`, `CAPJAX_PROCESS_ID`) name the coordinator; on Cloud
  TPU and SLURM clusters with no arguments at all, set
  `CAPJAX_AUTO_DISTRIBUTED=1` and JAX finds them itself.
  """
  coordinator_address = coordinator_address or os.environ.get(
      'CAPJAX_COORDINATOR', ''
  )
  num_processes = num_processes or int(
      os.environ.get('CAPJAX_NUM_PROCESSES', '0')
  )
  if process_id < 0:
    process_id = int(os.environ.get('CAPJAX_PROCESS_ID', '-1'))
  if coordinator_address:
    if num_processes <= 0 or process_id < 0:
      raise ValueError(
          'A coordinator address needs the number of processes and this '
          "process's id (--num_processes, --process_id)."
      )
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
  elif os.environ.get('CAPJAX_AUTO_DISTRIBUTED') == '1':
    jax.distributed.initialize()
  else:
    return
  logging.info(
      'Process %d of %d; %d local and %d global devices.',
      jax.process_index(), jax.process_count(), jax.local_device_count(),
      jax.device_count(),
  )


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A one-axis data-parallel mesh.

  Args:
    num_devices: how many devices to use; 0 means every device of every host.
      Fewer than all is for single-host runs (e.g. tests comparing 1 and 8
      devices).

  Returns:
    A `Mesh` with the axis `DATA_AXIS`.
  """
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ValueError(
          f'config.parallel.num_devices={num_devices} but only '
          f'{len(devices)} devices are visible.'
      )
    if jax.process_count() > 1 and num_devices != len(devices):
      raise ValueError(
          'On several hosts every device is used: set '
          'config.parallel.num_devices=0.'
      )
    devices = devices[:num_devices]
  return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def data_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  return jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(DATA_AXIS)
  )


def replicated_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def constrain_batch(x: jax.Array, axis: int = 0) -> jax.Array:
  """x with its batch `axis` split over the data axis of the mesh in context.

  Inside a function jitted under `jax.set_mesh(mesh)` (the train step, see
  `stepping.Stepper`), a loop whose carry starts from constants (a
  recurrence's zero state, a decoder's first beams) is otherwise given a
  replicated sharding by GSPMD, which then gathers the whole batch onto
  every device and runs the loop there: N devices each doing all of the
  work. Constraining the loop's inputs and carry keeps each device on its
  own examples. Outside such a mesh (one device, pmap, plain jit) and for a
  batch the devices do not divide, x is returned unchanged.

  Args:
    x: an array with a batch axis.
    axis: which axis of x is the batch.

  Returns:
    x, constrained.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or DATA_AXIS not in mesh.axis_names:
    return x
  if x.shape[axis] % mesh.shape[DATA_AXIS]:
    return x
  spec = [None] * x.ndim
  spec[axis] = DATA_AXIS
  return jax.lax.with_sharding_constraint(
      x, jax.sharding.PartitionSpec(*spec))


def _data_devices(batch: int) -> int:
  """Devices of the data axis of the mesh in context that divide `batch`."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or DATA_AXIS not in mesh.axis_names:
    return 1
  devices = mesh.shape[DATA_AXIS]
  return devices if devices > 1 and batch % devices == 0 else 1


def device_rows(x: jax.Array, axis: int) -> tuple[jax.Array, int]:
  """x with its batch `axis` split as [devices, batch / devices], devices first.

  Merging the leading axes of the result gives each device's rows as one
  contiguous block, so a 2-D matmul over a time-major [time, batch, in]
  array stays split over the devices (a local regrouping, no transfer).
  Outside a data-parallel mesh, or when `axis` is 0, x is returned as it is
  (devices 1). `undo_device_rows` puts the batch axis back.

  Args:
    x: an array whose `axis` is the batch.
    axis: the batch axis.

  Returns:
    `(grouped, devices)`: grouped [devices, ...] (x's axes, the batch axis
    divided by devices), or x itself when devices is 1.
  """
  devices = _data_devices(x.shape[axis]) if axis else 1
  if devices == 1:
    return x, 1
  shape = x.shape[:axis] + (devices, x.shape[axis] // devices)
  split = jnp.moveaxis(x.reshape(shape + x.shape[axis + 1:]), axis, 0)
  return constrain_batch(split, 0), devices


def undo_device_rows(y: jax.Array, axis: int, devices: int) -> jax.Array:
  """The inverse of `device_rows` (y's trailing axis may have another size).

  Args:
    y: [devices, ..., batch / devices, ...], or y itself when devices is 1.
    axis: the batch axis of the original array.
    devices: what `device_rows` returned.

  Returns:
    y with the batch axis merged back at `axis`.
  """
  if devices == 1:
    return y
  merged = jnp.moveaxis(y, 0, axis)
  shape = merged.shape[:axis] + (devices * merged.shape[axis + 1],)
  return constrain_batch(merged.reshape(shape + merged.shape[axis + 2:]),
                         axis)


def per_device(fn: Callable[..., Any], *args: jax.Array) -> Any:
  """fn(*args) on each device's slice of the batch (leading axis of all).

  For an op that the partitioner cannot split along the batch (XLA's
  `top_k` is one: inside a data-parallel jitted decode it gathered every
  device's candidates onto every device at each step), run under a
  `jax.shard_map` over the data axis of the mesh in context. Outside such a
  mesh, or for a batch the devices do not divide, it is fn(*args).

  Args:
    fn: a function of arrays whose rows are independent, returning arrays
      (or a tuple of them) with the same leading batch axis.
    *args: its arrays, batch first.

  Returns:
    fn's outputs.
  """
  if _data_devices(args[0].shape[0]) == 1:
    return fn(*args)
  spec = jax.sharding.PartitionSpec(DATA_AXIS)
  return jax.shard_map(fn, in_specs=(spec,) * len(args), out_specs=spec,
                       check_vma=False)(*args)


def check_batch_size(batch_size: int, num_devices: int, what: str) -> None:
  """Raises a clear error when a global batch does not split evenly."""
  if batch_size % num_devices or batch_size % jax.process_count():
    raise ValueError(
        f'{what}={batch_size} must be divisible by the number of devices '
        f'({num_devices}) and of processes ({jax.process_count()}).'
    )


def shard_batch(batch: dict[str, Any], mesh: jax.sharding.Mesh) -> dict:
  """Places this host's slice of a batch on the mesh as global arrays.

  Args:
    batch: numpy arrays with a leading per-host batch axis.
    mesh: the data-parallel mesh.

  Returns:
    The same keys as global `jax.Array`s sharded along the batch axis.
  """
  sharding = data_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), batch
  )


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Copies a pytree to every device of the mesh."""
  return jax.device_put(tree, replicated_sharding(mesh))


def to_host(tree: Any) -> Any:
  """Global arrays -> numpy, gathering across hosts when needed."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.tree.map(np.asarray, tree)


# ------------------------------------------------------------- pmap path ---


def pmap_replicate(tree: Any) -> Any:
  """Copies a pytree to every local device, with a leading device axis."""
  return jax_utils.replicate(tree)


def pmap_unreplicate(tree: Any) -> Any:
  """The first device's copy of a replicated pytree."""
  return jax.tree.map(lambda x: x[0], tree)


def pmap_split(batch: dict[str, Any]) -> dict:
  """[b, ...] per-host arrays -> [local_devices, b / local_devices, ...]."""
  n = jax.local_device_count()

  def split(x):
    if x.shape[0] % n:
      raise ValueError(
          f'A per-host batch of {x.shape[0]} does not split over {n} local '
          'devices.'
      )
    return x.reshape((n, x.shape[0] // n) + x.shape[1:])

  return jax.tree.map(split, batch)
