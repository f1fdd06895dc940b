"""Test set-up: 8 fake CPU devices, set before anything imports jax.

Tests check values, not speed, so XLA's slow optimisation passes are skipped
(set through the environment so that subprocesses started by tests inherit
it).
"""

import os

os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')

import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

# Preparing the tiny datasets prints progress bars otherwise.
tfds.disable_progress_bar()
