"""A retrieval train step with a frozen CNN: `benchmark frozen_step`.

Builds the BiLSTM retrieval model (the config defaults' sizes, a synthetic
vocabulary of `--vocab` ids) on a random CNN (`--arch`, default vgg16;
small_cnn, resnet50, ...) at `--image_size` (default 64) with
`model.encoder.trainable=False`, and times
`train.train_step` (jitted, state donated) two ways, one step of each per
round so their ratio is measured under the same machine load:

  optimizer_only  the CNN frozen by the optimizer alone (zero updates, no
                  state), its gradient still computed: what the retrieval
                  and multi-label tasks did before their models put a frozen
                  encoder behind `stop_gradient`;
  stop_gradient   the model as `retrieval.create` builds it now: no backward
                  pass through the CNN.

Reports step ms (median after warm-up), images/s, trace and compile seconds
(apart), the step's matmul and convolution FLOPs and the achieved GFLOP/s;
the stop_gradient record carries `speedup` over optimizer_only.
"""

import dataclasses
import functools

import jax
import numpy as np

from capjax import config_base
from capjax import train
from capjax.benchmarks import step_records
from capjax.data import vocab as vocab_lib
from capjax.models import encoders
from capjax.tasks import retrieval as retrieval_task

DEFAULT_BATCH = 8
DEFAULT_IMAGE_SIZE = 64
SIDES = ('optimizer_only', 'stop_gradient')


def check(config: dict) -> None:
  """ValueError naming a bad --arch (one CNN) or --image_size."""
  archs = config.get('archs') or ('vgg16',)
  if len(archs) != 1 or archs[0] not in encoders.ENCODERS or archs[0] in (
      'identity',):
    raise ValueError('--arch: one CNN of '
                     f'{sorted(set(encoders.ENCODERS) - {"identity"})}; got '
                     f'{archs}.')
  size = config.get('image_size')
  if size is not None and size < 32:
    raise ValueError(f'--image_size must be >= 32, got {size}.')


def _config(arch: str, size: int, batch: int, max_len: int):
  c = config_base.base_config()
  c.task = 'retrieval'
  c.retrieval.model, c.retrieval.text_encoder = 'common_space', 'bilstm'
  c.retrieval.num_layers, c.retrieval.loss = 1, 'xent'
  c.model.encoder.name = arch
  c.model.encoder.trainable = False
  c.dataset.image_size = size
  c.dataset.max_len = max_len
  c.train.batch_size = batch
  return c


def _batch(batch: int, size: int, max_len: int, vocab: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(4, vocab, (batch, max_len + 1)).astype(np.int32)
  tokens[:, 0] = vocab_lib.BOS_ID
  tokens[:, -1] = vocab_lib.EOS_ID
  return {'image': rng.integers(0, 256, (batch, size, size, 3), np.uint8),
          'tokens': tokens,
          'image_id': np.arange(batch, dtype=np.int64)}


def run(config: dict) -> list[dict]:
  """Two records, optimizer_only and stop_gradient, timed in turns."""
  check(config)
  arch = (config.get('archs') or ('vgg16',))[0]
  batch = config.get('batch') or DEFAULT_BATCH
  size = config.get('image_size') or DEFAULT_IMAGE_SIZE
  max_len = config.get('max_len') or 20
  vocab = config.get('vocab') or 5000
  example = _batch(batch, size, max_len, vocab)
  cfg = _config(arch, size, batch, max_len)
  words = [f'w{i}' for i in range(vocab - len(vocab_lib.SPECIAL_TOKENS))]
  meta = {'format': retrieval_task.META_FORMAT,
          'vocab': vocab_lib.Vocab(words).to_json()}
  setup = train.setup(cfg, meta, example)
  contenders, finish = {}, {}
  for side in SIDES:
    model = setup.model
    if side == 'optimizer_only':
      model = dataclasses.replace(model, frozen_encoder=False)
    step_fn = functools.partial(train.train_step, task=setup.task,
                                model=model, tx=setup.tx, config=cfg)
    state = jax.tree.map(np.array, setup.state)  # each side donates its own
    contenders[side], finish[side] = step_records.compile_step(
        step_fn, state, example, setup.dropout_rng)
    finish[side].update(
        benchmark='frozen_step', task='retrieval', arch=arch, side=side,
        batch=batch, image_size=size, max_len=max_len, vocab=vocab)
  records = step_records.time_steps(contenders, finish, config, batch)
  records[1]['speedup'] = records[0]['step_ms'] / records[1]['step_ms']
  return records

