"""The `python -m capjax.evaluate` command line, end to end."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest

from capjax.metrics import java

ROOT = os.path.join(os.path.dirname(__file__), '..')
DATA = os.path.join(ROOT, '..', 'shared', 'data', 'coco_val2014_captions')
REFS = os.path.join(DATA, 'captions_val2014_fakecap_subset_reconstructed.json')
RESULTS = os.path.join(DATA, 'captions_val2014_fakecap_results.json')
EXPECTED = os.path.join(DATA, 'cocoEvalCapDemo_expected_scores.json')


def _run(*args):
  return subprocess.run([sys.executable, '-m', 'capjax.evaluate', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)


class EvaluateTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.dir)
    with open(EXPECTED) as f:
      self.expected = json.load(f)['scores_printed_3dp']

  @absltest.skipUnless(shutil.which('java') and java.toolkit_dir(),
                       'needs Java and pycocoevalcap (test-only)')
  def test_demo_table_and_json_with_meteor(self):
    out = os.path.join(self.dir, 'scores.json')
    done = _run(f'--references={REFS}', f'--results={RESULTS}',
                f'--json={out}')
    self.assertEqual(done.returncode, 0, msg=done.stderr)
    for key in ('Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L',
                'CIDEr'):
      self.assertIn(f'{key} ', done.stdout)
      self.assertRegex(done.stdout, f'{key} +{self.expected[key]:0.3f}\n?')
    with open(out) as f:
      written = json.load(f)
    self.assertEqual(f'{written["METEOR"]:0.3f}',
                     f'{self.expected["METEOR"]:0.3f}')
    self.assertEqual(written['num_images'], 1000)

  def test_missing_flags_is_a_usage_error(self):
    done = _run()
    self.assertNotEqual(done.returncode, 0)
    self.assertIn('or both --references', done.stdout + done.stderr)

  def test_unknown_result_ids_are_reported(self):
    bad = os.path.join(self.dir, 'bad.json')
    with open(bad, 'w') as f:
      json.dump([{'image_id': -5, 'caption': 'a cat'}], f)
    done = _run(f'--references={REFS}', f'--results={bad}', '--metrics=bleu')
    self.assertEqual(done.returncode, 1)
    self.assertIn('not in the references', done.stderr)


if __name__ == '__main__':
  absltest.main()
