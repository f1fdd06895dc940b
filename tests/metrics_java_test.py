"""METEOR and SPICE through Java: the jars' figures; when they cannot run."""

import os
import shutil
import stat
import tempfile

from absl.testing import absltest

from capjax.metrics import coco
from capjax.metrics import java
from capjax.metrics import meteor
from capjax.metrics import spice

CANDIDATES = ['a man riding a horse on a beach', 'two dogs play in the snow']
REFERENCES = [['a man rides a horse', 'a person on a horse at the beach'],
              ['dogs playing in snow', 'two dogs in the snow']]
_HAS_METEOR = bool(shutil.which('java') and java.toolkit_dir())


def _fake_java(test, body):
  """An executable standing in for java (a shell script)."""
  directory = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, directory)
  path = os.path.join(directory, 'java')
  with open(path, 'w') as f:
    f.write('#!/bin/sh\n' + body + '\n')
  os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
  return path


class UnavailableTest(absltest.TestCase):

  def test_no_java(self):
    with self.assertRaisesRegex(java.Unavailable, 'Java not found'):
      meteor.compute(CANDIDATES, REFERENCES, java='/nonexistent/java')

  def test_missing_jar(self):
    with self.assertRaisesRegex(java.Unavailable, 'does not exist'):
      meteor.compute(CANDIDATES, REFERENCES, jar='/nonexistent/meteor.jar')

  @absltest.skipUnless(java.toolkit_dir(), 'needs pycocoevalcap (test-only)')
  def test_timeout_stops_a_hanging_jar(self):
    fake = _fake_java(self, 'sleep 30')
    with self.assertRaisesRegex(java.Unavailable, 'timed out after 1 s'):
      meteor.compute(CANDIDATES, REFERENCES, java=fake, timeout=1)

  @absltest.skipUnless(java.toolkit_dir(), 'needs pycocoevalcap (test-only)')
  def test_crash_shows_the_java_error(self):
    fake = _fake_java(self, 'echo "Error: boom" >&2; exit 3')
    with self.assertRaisesRegex(java.Unavailable, 'Error: boom'):
      meteor.compute(CANDIDATES, REFERENCES, java=fake)

  def test_spice_timeout_stops_the_jar(self):
    fake = _fake_java(self, 'sleep 30')
    with self.assertRaisesRegex(java.Unavailable, 'SPICE timed out'):
      java.run([fake], cwd='/', timeout=1, what='SPICE')

  def test_spice_without_corenlp_says_so(self):
    directory = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, directory)
    jar = os.path.join(directory, 'spice-1.0.jar')
    open(jar, 'w').close()
    with self.assertRaisesRegex(java.Unavailable,
                                'Stanford CoreNLP 3.6.0 models.*missing'):
      spice.compute(CANDIDATES, REFERENCES, jar=jar,
                    java=shutil.which('sh'))

  def test_score_still_gives_other_metrics(self):
    report = coco.score_details({1: ['a cat on a mat']}, {1: 'a cat'},
                                ('bleu', 'meteor'), java='/nonexistent/java')
    self.assertIn('Bleu_4', report.scores)
    self.assertNotIn('METEOR', report.scores)
    self.assertIn('Java not found', report.unavailable['meteor'])
    self.assertNotIn('\n', report.unavailable['meteor'])


@absltest.skipUnless(_HAS_METEOR, 'needs Java and pycocoevalcap (test-only)')
class MeteorJarTest(absltest.TestCase):

  def test_matches_the_toolkit_wrapper(self):
    from pycocoevalcap.meteor import meteor as tk_meteor  # pylint: disable=g-import-not-at-top
    ours = meteor.compute(CANDIDATES, REFERENCES)
    theirs, per_image = tk_meteor.Meteor().compute_score(
        {i: r for i, r in enumerate(REFERENCES)},
        {i: [c] for i, c in enumerate(CANDIDATES)})
    self.assertEqual(ours.score, theirs)
    self.assertEqual(ours.per_image.tolist(), per_image)


if __name__ == '__main__':
  absltest.main()
