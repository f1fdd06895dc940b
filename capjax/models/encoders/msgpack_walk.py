"""A msgpack file checked in one streamed pass: hashed, walked, none built.

`walk(f)` reads a file of one msgpack object in fixed-size chunks, feeds
every byte to a SHA-256, and follows the format's headers (maps, arrays,
strings, binaries, extension types, numbers) skipping every payload, so a
truncated file, a byte no header starts with, or bytes after the object are
found without building a single array. That costs a read and a hash of the
file, against `flax.serialization.msgpack_restore`'s copy of every array.
"""

import hashlib
import struct
from typing import BinaryIO

CHUNK = 1 << 22  # bytes read (and hashed) at a time

# First byte -> bytes of its length field, for the sized kinds.
_STR = {0xd9: 1, 0xda: 2, 0xdb: 4}
_BIN = {0xc4: 1, 0xc5: 2, 0xc6: 4}
_EXT = {0xc7: 1, 0xc8: 2, 0xc9: 4}  # then a type byte, then the payload
_ARRAY = {0xdc: 2, 0xdd: 4}
_MAP = {0xde: 2, 0xdf: 4}
# First byte -> payload bytes of the fixed-size kinds (nil, bools, numbers,
# fixext with its type byte).
_FIXED = {0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8,
          0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8,
          0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
          0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17}
_UINT = {1: '>B', 2: '>H', 4: '>I'}


class _Stream:
  """Chunked reads of a file; every byte read is hashed once, in order."""

  def __init__(self, f: BinaryIO):
    self.f = f
    self.sha256 = hashlib.sha256()
    self.buffer = b''
    self.offset = 0  # into `buffer`
    self.position = 0  # bytes of the file consumed

  def _fill(self) -> bool:
    chunk = self.f.read(CHUNK)
    self.sha256.update(chunk)
    self.buffer = self.buffer[self.offset:] + chunk
    self.offset = 0
    return bool(chunk)

  def take(self, n: int) -> bytes:
    """The next n bytes (a header: a few bytes)."""
    while len(self.buffer) - self.offset < n:
      if not self._fill():
        raise ValueError(f'truncated at byte {self.position}')
    out = self.buffer[self.offset:self.offset + n]
    self.offset += n
    self.position += n
    return out

  def skip(self, n: int) -> None:
    """Passes n bytes (a payload) without keeping them."""
    while n:
      if self.offset == len(self.buffer) and not self._fill():
        raise ValueError(f'truncated at byte {self.position}')
      step = min(n, len(self.buffer) - self.offset)
      self.offset += step
      self.position += step
      n -= step

  def at_end(self) -> bool:
    return self.offset == len(self.buffer) and not self._fill()

  def length(self, size: int) -> int:
    return struct.unpack(_UINT[size], self.take(size))[0]


def _value(stream: _Stream) -> None:
  """Walks one object (nested ones included)."""
  first = stream.take(1)[0]
  if first <= 0x7f or first >= 0xe0:  # fixint
    return
  if first <= 0x8f:  # fixmap
    _values(stream, 2 * (first & 0x0f))
  elif first <= 0x9f:  # fixarray
    _values(stream, first & 0x0f)
  elif first <= 0xbf:  # fixstr
    stream.skip(first & 0x1f)
  elif first in _FIXED:
    stream.skip(_FIXED[first])
  elif first in _STR:
    stream.skip(stream.length(_STR[first]))
  elif first in _BIN:
    stream.skip(stream.length(_BIN[first]))
  elif first in _EXT:
    stream.skip(stream.length(_EXT[first]) + 1)
  elif first in _ARRAY:
    _values(stream, stream.length(_ARRAY[first]))
  elif first in _MAP:
    _values(stream, 2 * stream.length(_MAP[first]))
  else:  # 0xc1: never used
    raise ValueError(f'no msgpack object starts with byte 0x{first:02x} (at '
                     f'byte {stream.position - 1})')


def _values(stream: _Stream, count: int) -> None:
  for _ in range(count):
    _value(stream)


def walk(f: BinaryIO) -> tuple[int, str]:
  """Checks that `f` holds one msgpack map and nothing after it.

  Args:
    f: a file open for binary reading, at its start.

  Returns:
    (entries of the top-level map, SHA-256 hex of every byte of the file).

  Raises:
    ValueError: where the file is damaged (truncated, a bad header byte,
      bytes after the map, or no map at the top), in one line.
  """
  stream = _Stream(f)
  first = stream.take(1)[0]
  if 0x80 <= first <= 0x8f:
    entries = first & 0x0f
  elif first in _MAP:
    entries = stream.length(_MAP[first])
  else:
    raise ValueError(f'the file does not start with a map (byte '
                     f'0x{first:02x})')
  _values(stream, 2 * entries)
  if not stream.at_end():
    raise ValueError(f'bytes after the parameter tree (from byte '
                     f'{stream.position})')
  return entries, stream.sha256.hexdigest()
