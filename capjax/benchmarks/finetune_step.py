"""Frozen vs fine-tuned CNN captioner train step: `benchmark finetune_step`.

Builds a merge captioner (LSTM, the config defaults' sizes, a synthetic
vocabulary of `--vocab` ids) on an ImageNet encoder (`--arch`, default
VGG-16) that starts from converted weights: random He-scaled weights are
written as a capjax encoder checkpoint in a temporary directory and read
through `model.encoder.weights`, the path a user's converted weights take.
Then it times `train.train_step` (jitted, state donated) with the encoder
frozen (`model.encoder.trainable=False`: no backward pass through the CNN,
no optimizer state for it) and fine-tuned (`optimizer.encoder_lr_multiplier`
0.1), one step of each per round so their ratio is measured under the same
machine load. Reports step ms (median after warm-up), images/s, trace and
compile seconds (apart) and the step's matmul FLOPs with the achieved
GFLOP/s; the fine-tuned record carries `step_ratio_to_frozen`.
"""

import tempfile

import numpy as np

from capjax import config_base
from capjax import converters
from capjax import train
from capjax.benchmarks import extract
from capjax.benchmarks import step_records
from capjax.models import encoders
from capjax.models.encoders import checkpoint
from capjax.tasks import captioning as captioning_task

DEFAULT_BATCH = 8
MODES = ('frozen', 'finetuned')
FINETUNE_MULTIPLIER = 0.1


def check(config: dict) -> None:
  """ValueError naming a bad --arch (one ImageNet CNN)."""
  archs = config.get('archs') or ('vgg16',)
  if len(archs) != 1 or archs[0] not in extract.ARCHS:
    raise ValueError(f'--arch: one of {extract.ARCHS}; got {archs}.')


def _config(arch: str, weights: str, mode: str, size: int, batch: int,
            max_len: int):
  c = config_base.base_config()
  c.model.decoder = 'merge'
  c.model.encoder.name = arch
  c.model.encoder.weights = weights
  c.model.encoder.trainable = mode == 'finetuned'
  c.optimizer.encoder_lr_multiplier = FINETUNE_MULTIPLIER
  c.optimizer.name = 'adam'
  c.dataset.image_size = size
  c.dataset.max_len = max_len
  c.train.batch_size = batch
  return c


def _batch(batch: int, size: int, max_len: int, vocab: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(4, vocab, (batch, max_len + 1)).astype(np.int32)
  tokens[:, 0] = 1  # BOS
  return {'image': rng.integers(0, 256, (batch, size, size, 3), np.uint8),
          'tokens': tokens}


def run(config: dict) -> list[dict]:
  """Two records, frozen and fine-tuned, timed in turns."""
  check(config)
  arch = (config.get('archs') or ('vgg16',))[0]
  batch = config.get('batch') or DEFAULT_BATCH
  size = config.get('image_size') or converters.IMAGE_SIZE[arch]
  max_len = config.get('max_len') or 20
  vocab = config.get('vocab') or 5000
  example = _batch(batch, size, max_len, vocab)
  contenders, finish = {}, {}
  with tempfile.TemporaryDirectory() as weights:
    encoder = encoders.ENCODERS[arch]()
    params = extract.random_params(encoder, example['image'][:1])
    fields = {k: v for k, v in vars(encoder).items() if k != 'dtype'}
    checkpoint.save(weights, arch, fields, params, source='random',
                    image_size=size)
    del params
    for mode in MODES:
      cfg = _config(arch, weights, mode, size, batch, max_len)
      meta = captioning_task.synthetic_meta(vocab)
      meta[captioning_task.WEIGHTS_KEY] = checkpoint.describe(weights)
      setup = train.setup(cfg, meta, example)
      contenders[mode], finish[mode] = step_records.compile_step(
          setup.step_fn, setup.state, example, setup.dropout_rng)
      finish[mode].update(
          benchmark='finetune_step', arch=arch, mode=mode, batch=batch,
          image_size=size, max_len=max_len, vocab=vocab,
          encoder_lr_multiplier=(FINETUNE_MULTIPLIER if mode == 'finetuned'
                                 else 0.0))
  records = step_records.time_steps(contenders, finish, config, batch)
  records[1]['step_ratio_to_frozen'] = (records[1]['step_ms']
                                        / records[0]['step_ms'])
  return records

