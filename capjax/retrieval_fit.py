r"""An interim trainer for the retrieval task, until the generic loop lands.

  python -m capjax.retrieval_fit --config=configs/retrieval/shapes.py:model=bilstm --workdir=runs/ret_bilstm

It drives `capjax.tasks.retrieval` through the task contract only
(`open_data`, `create_model`, `init_params`, `totals`, `loss`, `summarize`)
on one process, saves the final state in the workdir layout that
`capjax.checkpointing.restore_trained` reads (the task's meta in place of
the vocabulary), then runs the `retrieval` evaluator on `config.eval.splits`.
No resume, no NaN stop, no mid-run checkpoints: the generic loop (issue 9)
has those and replaces this module once the task is registered there.
"""

import functools
import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import flax
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import optax

from capjax import atomic_write
from capjax import checkpointing
from capjax import logs
from capjax import optimizers
from capjax.evaluators import retrieval as retrieval_evaluator
from capjax.tasks import retrieval as task

_CONFIG = config_flags.DEFINE_config_file('config', lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the run goes.')


@flax.struct.dataclass
class State:
  step: jax.Array  # [] int32
  params: dict  # {'encoder': ..., 'embedder': ...}
  opt_state: optax.OptState


def train_step(state: State, batch: dict, *, model, tx) -> tuple[State, dict]:
  """One optimizer step on a whole (single-process) batch."""

  def loss_fn(params):
    totals = task.totals(model, params, batch, train=True)
    return task.loss(totals, totals), totals

  grads, totals = jax.grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return State(state.step + 1, params, opt_state), totals


def fit(config, workdir: str, *, log=logging.info,
        history: list[dict[str, float]] | None = None) -> dict[str, dict]:
  """Trains `config.train.num_steps` steps, saves, evaluates.

  Args:
    config: the experiment config.
    workdir: where the checkpoint, meta and evaluation go.
    log: called with each progress line.
    history: if given, each logged summary (a dict with 'step') is
      appended to it.

  Returns:
    {split: metrics} of the retrieval evaluator.
  """
  os.makedirs(workdir, exist_ok=True)
  batches, meta = task.open_data(config)
  atomic_write.write_json(os.path.join(workdir, 'config.json'),
                          json.loads(config.to_json_best_effort()))
  atomic_write.write_json(os.path.join(workdir, 'meta.json'), meta)
  iterator = iter(batches(0))
  batch = next(iterator)
  model = task.create_model(config, meta)
  params = task.init_params(model, jax.random.key(config.seed), batch)
  tx = optimizers.create(config.optimizer, config.train.num_steps)
  state = State(jnp.int32(0), params, tx.init(params))
  step_fn = jax.jit(functools.partial(train_step, model=model, tx=tx),
                    donate_argnums=0)
  pending, start = [], time.perf_counter()
  num_steps = config.train.num_steps
  for step in range(1, num_steps + 1):
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    state, totals = step_fn(state, batch)
    pending.append(totals)
    if step % config.train.log_every == 0 or step == num_steps:
      summed = jax.tree.map(lambda *x: sum(x), *jax.device_get(pending))
      pending = []
      elapsed = time.perf_counter() - start
      eta = elapsed / step * (num_steps - step)
      summary = {k: float(v) for k, v in task.summarize(summed).items()}
      if history is not None:
        history.append({'step': step, **summary})
      log(f'step {step}/{num_steps} ' + ' '.join(
          f'{k}={v:.4f}' for k, v in summary.items())
          + f' ({elapsed:.0f}s, ETA {eta:.0f}s)')
    if step < num_steps:
      batch = next(iterator)
  checkpointer = checkpointing.Checkpointer(workdir, keep=1)
  checkpointer.save(num_steps, state, config, meta)
  checkpointer.wait()
  checkpointer.close()
  results = {}
  for split in config.eval.splits:
    evaluator = retrieval_evaluator.Evaluator(config, task, model, meta,
                                              split)
    results[split] = evaluator.run(state.params)
    evaluator.write(workdir)
    log(f'{split}: ' + ' '.join(
        f'{k}={v:.2f}' for k, v in sorted(results[split].items())
        if '/' not in k))
  return results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if not _WORKDIR.value:
    raise app.UsageError('Give --workdir=DIR: where the run goes.')
  logs.quiet_libraries()
  fit(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
