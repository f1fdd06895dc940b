"""Donated train steps compiled, timed in turns and reported as records.

What the image-model step benchmarks (`finetune_step`, `frozen_step`) share:
each side's step is jitted with its state donated and compiled apart (trace
and compile seconds, matmul FLOPs), then all sides are timed in turns.
"""

import time
from typing import Any, Callable

import jax

from capjax.benchmarks import flops
from capjax.benchmarks import timing


def compile_step(step_fn: Callable, state: Any, batch: dict,
                 rng: jax.Array) -> tuple[Callable[[], Any], dict]:
  """Jits and compiles `step_fn(state, batch, rng)`, state donated.

  Args:
    step_fn: the pure train step.
    state: its state (this copy is donated to the first call).
    batch: one batch.
    rng: the dropout key.

  Returns:
    `(one_step, record)`: one_step runs one step per call, threading the
    state, and returns its metrics; record has trace_s, compile_s and
    gflop_per_step.
  """
  step = jax.jit(step_fn, donate_argnums=(0,))
  start = time.perf_counter()
  lowered = step.lower(state, batch, rng)
  traced = time.perf_counter()
  compiled = lowered.compile()
  compile_s = time.perf_counter() - traced
  gflop = flops.matmul_flops(step_fn, state, batch, rng) / 1e9

  def one_step():
    nonlocal state
    state, metrics = compiled(state, batch, rng)
    return metrics

  return one_step, dict(trace_s=traced - start, compile_s=compile_s,
                        gflop_per_step=gflop)


def time_steps(contenders: dict[str, Callable[[], Any]],
               records: dict[str, dict], config: dict,
               images_per_step: int) -> list[dict]:
  """Times the contenders in turns and completes their records.

  Args:
    contenders: name -> one_step (from `compile_step`).
    records: name -> its record so far (updated in place).
    config: the benchmark flags (repeats, warmup, between).
    images_per_step: for images_per_s.

  Returns:
    The records in the order of `contenders`, with step_ms (median),
    min_step_ms, max_step_ms, images_per_s, achieved_gflop_per_s, the last
    loss, repeats and warmup.
  """
  timed = timing.time_alternating(contenders, config.get('repeats', 5),
                                  config.get('warmup', 1),
                                  between=config.get('between'))
  out = []
  for name in contenders:
    t, metrics = timed[name]
    record = records[name]
    record.update(
        step_ms=1e3 * t.median_seconds, min_step_ms=1e3 * t.min_seconds,
        max_step_ms=1e3 * t.max_seconds,
        images_per_s=images_per_step / t.median_seconds,
        achieved_gflop_per_s=record['gflop_per_step'] / t.median_seconds,
        loss=float(metrics['loss']), repeats=t.repeats, warmup=t.warmup)
    out.append(record)
  return out
