"""Atomic writes: whole files or the old ones, with the usual permissions."""

import os
import shutil
import stat
import tempfile
from unittest import mock

from absl.testing import absltest

from capjax import atomic_write


class AtomicWriteTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.root)

  def test_writes_json_and_creates_the_directory(self):
    path = os.path.join(self.root, 'a', 'b.json')
    atomic_write.write_json(path, {'x': 'é'})
    with open(path, encoding='utf-8') as f:
      self.assertEqual(f.read(), '{"x": "é"}\n')

  def test_file_mode_follows_the_umask_not_mkstemp(self):
    path = os.path.join(self.root, 'metrics.json')
    old = os.umask(0o027)
    self.addCleanup(os.umask, old)
    atomic_write.write_bytes(path, b'{}')
    self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)

  def test_a_failed_write_leaves_the_old_file_and_no_temporary(self):
    path = os.path.join(self.root, 'vocab.json')
    atomic_write.write_bytes(path, b'old')
    with mock.patch.object(os, 'replace', side_effect=OSError('disk full')):
      with self.assertRaises(OSError):
        atomic_write.write_bytes(path, b'new')
    with open(path, 'rb') as f:
      self.assertEqual(f.read(), b'old')
    self.assertEqual(os.listdir(self.root), ['vocab.json'])


if __name__ == '__main__':
  absltest.main()
