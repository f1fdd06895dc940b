"""Likelihood retrieval speed: `capjax.benchmark retrieval --model=mrnn`.

Scores every pair of N images and S = 5 N sentences with log P(s | I) as
evaluation does (`likelihood.compile_scorer`: one jitted program, chunked,
sharded over the devices), in two settings:
* `shapes`: the configs/mrnn/shapes.py m-RNN (small CNN on 64 x 64 images,
  E 64 / H 128 / M 256, V 48, T 28);
* `features`: the paper's sizes on precomputed 4096-d features (identity
  encoder, E 128 / H 256 / M 512, V = --vocab, T = --max_len).
For each: `pairs_per_s` of the fast path (the m-RNN's sentence-only work
done once, run packed over real word positions; for other captioners the
adapter), `padded_pairs_per_s` of the same fast path over padded pairs,
`naive_pairs_per_s` of a full forward pass per pair (image encoder
included) on the same pairs, `adapter_pairs_per_s` (images encoded once,
decoder per pair), the speed-ups, compile seconds, and the fast path's
matmul FLOPs with `share_of_matmul`. The packed path computes whole tiles
of (image, word position) items; its `gflop` counts only the real items'
share of the program's FLOPs (`real_item_share`), so tile padding never
counts as speed.
"""

import time

import jax
import numpy as np

from capjax import config_base
from capjax import parallel
from capjax.benchmarks import bench_model
from capjax.benchmarks import dtypes
from capjax.benchmarks import flops
from capjax.benchmarks import timing
from capjax.models import captioning
from capjax.models.retrieval import likelihood

SETTINGS = ('shapes', 'features')
SHAPES_VOCAB = 48
CHUNK = 1024


def _config(setting: str, model_name: str, config: dict):
  c = config_base.base_config()
  name, _, cell = model_name.partition('/')
  c.model.decoder = name
  c.model.cell = cell or 'lstm'
  if setting == 'shapes':
    c.model.embed_dim, c.model.hidden_dim = 64, 128
    c.model.mrnn.multimodal_dim = 256
    c.model.attention_dim = 32
    c.model.encoder.channels = (32, 64, 128, 128)
    c.model.encoder.strides = (2, 2, 2, 1)
    return c, SHAPES_VOCAB, 28
  c.model.embed_dim = config.get('embed') or 128
  c.model.hidden_dim = config.get('hidden') or 256
  c.model.mrnn.multimodal_dim = 512
  c.model.encoder.name = 'identity'
  return c, config.get('vocab') or 5000, config.get('max_len') or 20


def _data(setting: str, num_images: int, vocab: int, max_len: int):
  rng = np.random.default_rng(0)
  if setting == 'shapes':
    images = rng.integers(0, 256, (num_images, 64, 64, 3), np.uint8)
  else:
    images = rng.standard_normal((num_images, 4096), np.float32)
  size = bench_model.ModelSize(batch=5 * num_images, max_len=max_len,
                               vocab=vocab)
  tokens = bench_model.caption_tokens(size)
  inputs, targets = tokens[:, :-1], tokens[:, 1:]
  return images, inputs, targets, (targets != 0).astype(np.float32)


def _scorer(model, args, builder, mesh):
  """(fn(params, *args) -> [N, S], its arguments' count) for a path."""
  if builder == 'packed':
    # Same memory per step as CHUNK padded pairs.
    fn = likelihood.compile_packed_scorer(
        model, np.asarray(args[3]), num_images=args[0].shape[0],
        chunk=CHUNK * args[1].shape[1], mesh=mesh)
    return fn, 3
  fn = likelihood.compile_scorer(
      model, num_images=args[0].shape[0], num_sentences=args[1].shape[0],
      chunk=CHUNK, mesh=mesh, builder=builder)
  return fn, 4


def _real_item_share(args, mesh) -> float:
  """Real (image, word position) items over those the packed tiles hold."""
  num_images = args[0].shape[0]
  positions = len(likelihood.packed_positions(np.asarray(args[3]))[0])
  (block_i, image_blocks), (block_p, position_blocks) = (
      likelihood.packed_blocks(num_images, positions,
                               CHUNK * args[1].shape[1], mesh.size))
  return (num_images * positions
          / (block_i * image_blocks * block_p * position_blocks))


def _compiled(model, params, args, builder, mesh):
  fn, num_args = _scorer(model, args, builder, mesh)
  start = time.perf_counter()
  compiled = fn.lower(params, *args[:num_args]).compile()
  return (lambda p, *a: compiled(p, *a[:num_args]),
          time.perf_counter() - start)


def run(config: dict) -> list[dict]:
  """One record per setting and `--dtype` (module docstring).

  Every path is timed in float32; in another dtype only the fast path,
  with its speed-up over the float32 fast path of the same run.
  """
  model_name = config.get('model') or 'mrnn'
  num_images = config.get('retrieval_images') or 32
  names = dtypes.from_config(config)
  mesh = parallel.make_mesh()
  records = []
  for setting in SETTINGS:
    float32_seconds = None
    for dtype in ('float32',) + tuple(n for n in names if n != 'float32'):
      record = _run_one(config, setting, model_name, num_images, dtype, mesh,
                        every_path=dtype == 'float32')
      if dtype == 'float32':
        float32_seconds = record['seconds']
      else:
        record['speedup_vs_float32'] = float32_seconds / record['seconds']
      if dtype in names:
        records.append(record)
  return records


def _run_one(config, setting, model_name, num_images, dtype, mesh, *,
             every_path):
  cfg, vocab, max_len = _config(setting, model_name, config)
  model = captioning.create(dtypes.set_dtype(cfg, dtype), vocab)
  args = tuple(jax.device_put(a) for a in
               _data(setting, num_images, vocab, max_len))
  params = jax.jit(model.init)(jax.random.key(0), args[0][:1], args[1][:1])
  fast = likelihood.pair_fn_for(model)
  packed = fast is likelihood.fast_mrnn
  record = dict(benchmark='retrieval', model=model_name, setting=setting,
                dtype=dtype, path='packed' if packed else fast.__name__,
                images=num_images, sentences=args[1].shape[0], vocab=vocab,
                max_len=max_len, pairs=num_images * args[1].shape[0],
                real_word_share=float(np.asarray(args[3]).mean()))
  results = {}
  paths = [('fast', 'packed' if packed else fast)]
  if packed and every_path:
    paths += [('padded', fast), ('adapter', likelihood.adapter)]
  if every_path:
    paths.append(('naive', likelihood.naive))
  for label, builder in paths:
    compiled, compile_s = _compiled(model, params, args, builder, mesh)
    t, scores = timing.time_fn(lambda c=compiled: c(params, *args),
                               config['repeats'], config['warmup'],
                               between=config.get('between'))
    results[label] = np.asarray(scores)
    prefix = '' if label == 'fast' else f'{label}_'
    record[f'{prefix}pairs_per_s'] = record['pairs'] / t.median_seconds
    record[f'{prefix}seconds'] = t.median_seconds
    record[f'{prefix}compile_s'] = compile_s
    if label == 'fast':
      unsharded, num_args = _scorer(model, args, builder, None)
      gflop = flops.matmul_flops(unsharded, params, *args[:num_args]) / 1e9
      if builder == 'packed':
        record['real_item_share'] = _real_item_share(args, mesh)
        gflop *= record['real_item_share']
      record['gflop'] = gflop
      record['achieved_gflop_per_s'] = gflop / t.median_seconds
  for label in results:
    if label != 'fast':
      record[f'speedup_vs_{label}'] = (record['pairs_per_s']
                                       / record[f'{label}_pairs_per_s'])
      record[f'max_abs_diff_vs_{label}'] = float(
          np.abs(results['fast'] - results[label]).max())
  return record
