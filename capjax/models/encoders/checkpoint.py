"""capjax's own encoder checkpoints: a directory of params and a small JSON.

`DIR/encoder.json` names the architecture, the origin of the weights, the
encoder's fields (preprocessing and the variant the weights need) and the
image side the network was made for; `DIR/params.msgpack` holds the float32
parameter tree (flax msgpack). Both are written atomically, the params
first, so a directory with its JSON is complete.
"""

import dataclasses
import hashlib
import json
import os

from flax import serialization
import jax
import numpy as np

from capjax import atomic_write
from capjax.models import encoders
from capjax.models.encoders import msgpack_walk

FORMAT = 'capjax-encoder'
VERSION = 1
JSON_NAME = 'encoder.json'
PARAMS_NAME = 'params.msgpack'


def save(directory: str, arch: str, fields: dict, params, *, source: str,
         image_size: int, origin: str = '') -> None:
  """Writes a converted encoder to `directory` (created if needed).

  Args:
    directory: the output directory.
    arch: a key of `encoders.ENCODERS`.
    fields: the encoder's dataclass fields (without `dtype`).
    params: the parameter tree (arrays).
    source: where the weights came from ('keras', 'torch', 'random').
    image_size: the side the network takes by default.
    origin: the file the weights were converted from (informative).
  """
  params = jax.tree.map(lambda x: np.asarray(x, np.float32), params)
  os.makedirs(directory, exist_ok=True)
  atomic_write.write_bytes(os.path.join(directory, PARAMS_NAME),
                           serialization.msgpack_serialize(params))
  atomic_write.write_json(os.path.join(directory, JSON_NAME), {
      'format': FORMAT,
      'version': VERSION,
      'arch': arch,
      'source': source,
      'fields': dict(fields),
      'image_size': int(image_size),
      'origin': origin,
  }, indent=1)


def read_info(directory: str) -> dict:
  """The JSON of an encoder checkpoint; one-line errors for a wrong one."""
  path = os.path.join(directory, JSON_NAME)
  try:
    with open(path, encoding='utf-8') as f:
      info = json.load(f)
  except FileNotFoundError:
    raise ValueError(
        f'{directory} is not a capjax encoder checkpoint (no {JSON_NAME}); '
        'make one with python -m capjax.convert_weights.') from None
  except json.JSONDecodeError as e:
    raise ValueError(f'{path} is damaged ({e}); convert the weights '
                     'again.') from None
  if info.get('format') != FORMAT or info.get('arch') not in encoders.ENCODERS:
    raise ValueError(f'{path} does not describe a capjax encoder (format '
                     f'{info.get("format")!r}, arch {info.get("arch")!r}).')
  if not isinstance(info.get('fields'), dict):
    raise ValueError(f'{path} has no encoder fields (preprocessing, ...): '
                     'convert the weights again.')
  return info


# realpath of a params.msgpack -> ((inode, size, mtime_ns), sha256) of what
# `describe` checked in this process, so `load_params` need not hash it again.
_CHECKED: dict[str, tuple[tuple[int, int, int], str]] = {}


def _identity(f) -> tuple[int, int, int]:
  """What tells an open file's contents apart cheaply: (inode, size, mtime)."""
  st = os.fstat(f.fileno())
  return st.st_ino, st.st_size, st.st_mtime_ns


def _damaged(path: str, e: Exception) -> ValueError:
  return ValueError(f'{path} is damaged ({type(e).__name__}: {e}); convert '
                    'the weights again.')


def _check_params(directory: str) -> str:
  """The SHA-256 of params.msgpack, after a check of its structure.

  One streamed pass (`msgpack_walk`): every byte hashed, the msgpack
  headers followed (a non-empty map, no missing or extra bytes), no array
  built. One-line errors when damaged.
  """
  path = os.path.join(directory, PARAMS_NAME)
  try:
    with open(path, 'rb') as f:
      identity = _identity(f)
      entries, sha256 = msgpack_walk.walk(f)
  except FileNotFoundError:
    raise ValueError(f'{directory} has {JSON_NAME} but no {PARAMS_NAME}; '
                     'convert the weights again.') from None
  except Exception as e:  # pylint: disable=broad-except
    raise _damaged(path, e) from None
  if not entries:
    raise ValueError(f'{path} holds no parameter tree; convert the weights '
                     'again.')
  _CHECKED[os.path.realpath(path)] = (identity, sha256)
  return sha256


def _read_params(directory: str, sha256: str = ''):
  """(params, sha256 hex of params.msgpack); one-line errors when damaged.

  The hash is not computed again for a file `describe` hashed in this
  process as `sha256`, unchanged since (same inode, size and mtime).
  """
  path = os.path.join(directory, PARAMS_NAME)
  try:
    with open(path, 'rb') as f:
      identity = _identity(f)
      data = f.read()
    params = serialization.msgpack_restore(data)
  except FileNotFoundError:
    raise ValueError(f'{directory} has {JSON_NAME} but no {PARAMS_NAME}; '
                     'convert the weights again.') from None
  except Exception as e:  # pylint: disable=broad-except
    raise _damaged(path, e) from None
  if not isinstance(params, dict) or not params:
    raise ValueError(f'{path} holds no parameter tree; convert the weights '
                     'again.')
  if sha256 and _CHECKED.get(os.path.realpath(path)) == (identity, sha256):
    return params, sha256
  return params, hashlib.sha256(data).hexdigest()


def describe(directory: str) -> dict:
  """What a run's meta records of the weights it starts from.

  Checks the whole checkpoint (`_check_params`: every byte hashed, the
  structure walked, no array built): a damaged one is a one-line
  ValueError here, before a run writes anything. The params are read once,
  later, by `load_params`.

  Returns:
    {'arch', 'source', 'fields', 'sha256'}: the JSON's identity and the
    SHA-256 of params.msgpack (another file of the same arch differs).
  """
  info = read_info(directory)
  sha256 = _check_params(directory)
  return {'arch': info['arch'], 'source': info.get('source', ''),
          'fields': dict(info['fields']), 'sha256': sha256}


def load_params(directory: str, sha256: str = ''):
  """The float32 params (numpy) of a checkpoint, checked against `sha256`.

  Args:
    directory: written by `save`.
    sha256: the fingerprint `describe` gave ('' = not checked).
  """
  read_info(directory)
  params, got = _read_params(directory, sha256)
  if sha256 and got != sha256:
    raise ValueError(f'{directory} changed since the run recorded its '
                     'weights (another params.msgpack): use the weights the '
                     'run started from, or a new --workdir.')
  return params


def load(directory: str, dtype: str = 'float32'):
  """Reads an encoder checkpoint.

  Args:
    directory: written by `save`.
    dtype: the encoder's compute dtype ('float32' or 'bfloat16').

  Returns:
    (encoder, params, info): the encoder built from its fields, its float32
    params (numpy) and the JSON.
  """
  info = read_info(directory)
  encoder_class = encoders.ENCODERS[info['arch']]
  fields = dict(info['fields'])
  if 'dtype' in {f.name for f in dataclasses.fields(encoder_class)}:
    fields['dtype'] = dtype
  encoder = encoder_class(**fields)
  params, _ = _read_params(directory)
  return encoder, params, info
