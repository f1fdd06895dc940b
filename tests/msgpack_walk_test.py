"""The streamed msgpack check against the msgpack library flax writes with."""

import hashlib
import io
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
from flax import serialization
import msgpack
import numpy as np

from capjax.models.encoders import msgpack_walk


def _every_kind() -> dict:
  """A map holding every msgpack kind, each length class of each."""
  return {
      'ints': [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32,
               2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769,
               -2**31, -2**31 - 1, -2**63],
      'floats': [0.5, -1e300, float('inf')],
      'f32': msgpack.packb(1.5, use_single_float=True),
      'nil_bools': [None, True, False],
      'strs': ['', 'a' * 31, 'b' * 32, 'c' * 255, 'd' * 256, 'e' * 65536],
      'bins': [b'', b'x' * 255, b'y' * 256, b'z' * 65536],
      'exts': [msgpack.ExtType(1, b'q' * n)
               for n in (1, 2, 4, 8, 16, 3, 255, 256, 65536)],
      'arrays': [list(range(15)), list(range(16)), list(range(65536))],
      'maps': [{str(i): i for i in range(n)} for n in (15, 16, 65536)],
      'nested': {'a': {'b': {'c': [[], {}, [[]]]}}},
  }


class MsgpackWalkTest(parameterized.TestCase):

  @parameterized.parameters(7, msgpack_walk.CHUNK)  # headers across chunks
  def test_valid_files_are_walked_and_hashed(self, chunk):
    params = {'conv': {'kernel': np.arange(24, dtype=np.float32).reshape(
        2, 3, 4), 'bias': np.ones([4], np.float32)}, 'scale': np.float32(2)}
    files = [msgpack.packb(_every_kind()),
             serialization.msgpack_serialize(params), msgpack.packb({})]
    with mock.patch.object(msgpack_walk, 'CHUNK', chunk):
      for data in files:
        entries, sha256 = msgpack_walk.walk(io.BytesIO(data))
        self.assertEqual(entries, len(msgpack.unpackb(data, raw=False,
                                                      strict_map_key=False)))
        self.assertEqual(sha256, hashlib.sha256(data).hexdigest())

  def test_every_cut_and_extra_bytes_are_found(self):
    data = msgpack.packb({'k': [1, 'two', b'3', 4.0,
                                msgpack.ExtType(5, b'six')]})
    with mock.patch.object(msgpack_walk, 'CHUNK', 5):
      for cut in range(len(data)):
        with self.assertRaisesRegex(ValueError, 'truncated|start with a map'):
          msgpack_walk.walk(io.BytesIO(data[:cut]))
      with self.assertRaisesRegex(ValueError, 'bytes after the parameter'):
        msgpack_walk.walk(io.BytesIO(data + b'\x00'))

  def test_a_bad_header_byte_or_no_map_is_named(self):
    with self.assertRaisesRegex(ValueError, 'byte 0xc1'):
      msgpack_walk.walk(io.BytesIO(b'\x81\xa1k\xc1'))
    with self.assertRaisesRegex(ValueError, 'does not start with a map'):
      msgpack_walk.walk(io.BytesIO(msgpack.packb([1, 2])))


if __name__ == '__main__':
  absltest.main()
