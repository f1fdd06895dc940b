r"""Interim trainer of the new tasks (multilabel, language_model), one device.

  python -m capjax.task_loop --config=configs/story/flickr8k.py --workdir=runs/story
  python -m capjax.task_loop --config=configs/hashtags/shapes.py:model=multilabel --workdir=runs/tags_ml

Until the generic loop (`capjax.main`) runs these tasks, this short loop
drives a task module through its contract (`open_data`, `create_model`,
`init_params`, `totals`, `loss`, `summarize`; `totals_with_state` when the
state is carried), on one device, without resume. It saves the final state
in the checkpoint format of `checkpointing` (the task meta as the 'vocab'
item), then evaluates: held-out bits/char against the unigram baseline and
the untrained model, and a sample story (language_model); the seed's tag
table on the test split (multilabel), through the evaluators
(`capjax.evaluators.bits_per_char`, `.tags`), which write `<workdir>/eval/`.
The figures also go to `<workdir>/results.json`.
"""

import json
import math
import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
import optax
from ml_collections import config_flags

from capjax import atomic_write
from capjax import checkpointing
from capjax import optimizers
from capjax.evaluators import bits_per_char
from capjax.evaluators import tags
from capjax.tasks import language_model
from capjax.tasks import multilabel

TASKS = {'multilabel': multilabel, 'language_model': language_model}

_CONFIG = config_flags.DEFINE_config_file('config', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the run is written.')


def _eta(done: int, total: int, elapsed: float) -> str:
  if not done:
    return '?'
  seconds = elapsed / done * (total - done)
  return f'{int(seconds // 60)}m{int(seconds % 60):02d}s'


def _evaluate(config, task, model, meta, params, init_params,
              workdir: str) -> dict:
  if task is language_model:
    evaluator = bits_per_char.Evaluator(config, task, model, meta)
    results = {'bits_per_char_step0':
               evaluator.run(init_params)['bits_per_char']}
    results.update(evaluator.run(params))
    results['story'] = config.eval.story_seed + evaluator.story
  else:
    evaluator = tags.Evaluator(config, task, model, meta, 'test')
    results = evaluator.run(params)
  evaluator.write(workdir)
  return results


def run(config, workdir: str) -> dict:
  """Trains `config.task` for `config.train.num_steps` steps; see the module."""
  if config.task not in TASKS:
    raise ValueError(f'capjax.task_loop trains {sorted(TASKS)}; config.task '
                     f'is {config.task!r} (train captioners with capjax.main).')
  task = TASKS[config.task]
  batches, meta = task.open_data(config)
  model = task.create_model(config, meta)
  stream = batches(0)
  first = next(stream)
  rng = jax.random.key(config.seed)
  init_rng, rng = jax.random.split(rng)
  del rng
  params = jax.jit(lambda r, b: task.init_params(model, r, b))(
      init_rng, first)
  init_params = params
  num_steps = config.train.num_steps
  tx = optimizers.create(config.optimizer, num_steps)
  opt_state = tx.init(params)
  carry = task is language_model and language_model.carries_state(config)

  @jax.jit
  def step(params, opt_state, batch, state):
    def loss_fn(p):
      if carry:
        sums, new_state = task.totals_with_state(model, p, batch, state)
      else:
        sums, new_state = task.totals(model, p, batch, train=True), state
      return task.loss(sums, sums), (sums, new_state)
    (_, (sums, state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, sums, state

  state = (language_model.initial_state(model, params, len(first['tokens']))
           if carry else None)
  start = time.time()
  summed = None
  batch = first
  for i in range(num_steps):
    params, opt_state, sums, state = step(params, opt_state, batch, state)
    summed = sums if summed is None else jax.tree.map(np.add, summed, sums)
    if (i + 1) % config.train.log_every == 0 or i + 1 == num_steps:
      summary = task.summarize(jax.device_get(summed))
      if not math.isfinite(summary['loss']):
        raise FloatingPointError(f'Loss is {summary["loss"]} at step {i + 1}.')
      print(f'step {i + 1}/{num_steps} ' + ' '.join(
          f'{k}={v:.4f}' for k, v in summary.items())
            + f' eta={_eta(i + 1, num_steps, time.time() - start)}',
            flush=True)
      summed = None
    batch = next(stream)
  seconds = time.time() - start
  saver = checkpointing.Checkpointer(workdir, keep=1)
  saver.save(num_steps, {'params': params, 'opt_state': opt_state,
                         'step': num_steps}, config, meta)
  saver.wait()
  saver.close()
  results = {'task': config.task, 'steps': num_steps,
             'train_seconds': seconds}
  results.update(
      _evaluate(config, task, model, meta, params, init_params, workdir))
  atomic_write.write_json(os.path.join(workdir, 'results.json'), results)
  return results


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  results = run(_CONFIG.value, _WORKDIR.value)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir'])
  app.run(main)
