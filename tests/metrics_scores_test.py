"""BLEU, ROUGE-L and CIDEr-D against the COCO toolkit's numbers."""

import collections
import json
import os
import shutil
import tempfile

from absl.testing import absltest
import numpy as np

from capjax.metrics import bleu
from capjax.metrics import cider
from capjax.metrics import coco
from capjax.metrics import java
from capjax.metrics import rouge

DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                    'coco_val2014_captions')
DEMO_REFS = os.path.join(DATA,
                         'captions_val2014_fakecap_subset_reconstructed.json')
DEMO_RESULTS = os.path.join(DATA, 'captions_val2014_fakecap_results.json')
EXPECTED = os.path.join(DATA, 'cocoEvalCapDemo_expected_scores.json')
CAPTIONS = os.path.join(DATA, 'captions_val2014_text_only.json')
NUM_IMAGES = 300
_HAS_TOOLKIT = bool(shutil.which('java') and java.toolkit_dir())


class DemoTest(absltest.TestCase):
  """The toolkit demo's 1000 images: printed digits and BLEU statistics."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    with open(EXPECTED) as f:
      cls.expected = json.load(f)
    cls.report = coco.score_details(coco.load_references(DEMO_REFS),
                                    coco.load_results(DEMO_RESULTS),
                                    metrics=('bleu', 'rouge', 'cider'))

  def test_scores_match_printed_digits(self):
    printed = self.expected['scores_printed_3dp']
    for key, value in self.report.scores.items():
      self.assertEqual(f'{value:0.3f}', f'{printed[key]:0.3f}', msg=key)
    self.assertLen(self.report.scores, 6)

  def test_bleu_statistics_match_exactly(self):
    stats = self.expected['bleu_stats']
    got = self.report.bleu_stats
    self.assertEqual(got.reflen, stats['reflen'])
    self.assertEqual(got.testlen, stats['testlen'])
    self.assertEqual(got.guess, stats['guess'])
    self.assertEqual(got.correct, stats['correct'])
    self.assertAlmostEqual(got.ratio, stats['ratio'], places=10)

  def test_bleu_matches_recomputed_values(self):
    for key, value in self.expected['bleu_recomputed_from_stats'].items():
      self.assertAlmostEqual(self.report.scores[key], value, places=6)


@absltest.skipUnless(_HAS_TOOLKIT, 'needs Java and pycocoevalcap (test-only)')
class ToolkitAgreementTest(absltest.TestCase):
  """300 real COCO images: first caption vs the others, toolkit included."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    from pycocoevalcap.bleu import bleu as tk_bleu  # pylint: disable=g-import-not-at-top
    from pycocoevalcap.cider import cider as tk_cider  # pylint: disable=g-import-not-at-top
    from pycocoevalcap.rouge import rouge as tk_rouge  # pylint: disable=g-import-not-at-top
    from pycocoevalcap.tokenizer import ptbtokenizer  # pylint: disable=g-import-not-at-top
    with open(CAPTIONS, encoding='utf-8') as f:
      data = json.load(f)
    captions = collections.defaultdict(list)
    for ann in data['annotations']:
      captions[ann['image_id']].append(ann['caption'])
    # A spread of images (every 97th) rather than the file's first ones.
    ids = [im['id'] for im in data['images']][::97][:NUM_IMAGES]
    cls.references = {i: captions[i][1:] for i in ids}
    cls.results = {i: captions[i][0] for i in ids}
    tok = ptbtokenizer.PTBTokenizer()
    gts = tok.tokenize({i: [{'caption': c} for c in cls.references[i]]
                        for i in ids})
    res = tok.tokenize({i: [{'caption': cls.results[i]}] for i in ids})
    cls.toolkit = {}
    b, b_img = tk_bleu.Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
      cls.toolkit[f'Bleu_{k + 1}'] = (b[k], b_img[k])
    cls.toolkit['ROUGE_L'] = tk_rouge.Rouge().compute_score(gts, res)
    cls.toolkit['CIDEr'] = tk_cider.Cider().compute_score(gts, res)
    cls.report = coco.score_details(cls.references, cls.results,
                                    ('bleu', 'rouge', 'cider'))

  def test_corpus_scores_agree_to_1e6(self):
    for key, (value, _) in self.toolkit.items():
      self.assertAlmostEqual(self.report.scores[key], float(value), delta=1e-6,
                             msg=key)

  def test_per_image_scores_agree_to_1e6(self):
    for key, (_, per_image) in self.toolkit.items():
      np.testing.assert_allclose(self.report.per_image[key],
                                 np.asarray(per_image, np.float64),
                                 atol=1e-6, err_msg=key)


class EdgeCaseTest(absltest.TestCase):

  def test_rouge_empty_candidate_against_empty_reference(self):
    # The toolkit splits '' into [''], so two empty captions match fully.
    got = rouge.compute([[], ['a']], [[[]], [['b']]])
    np.testing.assert_allclose(got.per_image, [1.0, 0.0])

  def test_rouge_long_pairs_use_the_exact_fallback(self):
    long_a = [str(i % 7) for i in range(80)]
    long_b = [str(i % 5) for i in range(90)]
    lcs = rouge._lcs_dynamic(long_a, long_b)
    got = rouge.compute([long_a], [[long_b]])
    p, r = lcs / 80, lcs / 90
    expected = (1 + 1.2**2) * p * r / (r + 1.2**2 * p)
    self.assertAlmostEqual(got.score, expected, places=12)

  def test_bleu_hand_computed_unigram_clipping(self):
    # 'the the the' vs 'the cat': clipped unigram matches = 1 of 3.
    result = bleu.compute([['the', 'the', 'the']], [[['the', 'cat']]], n=1)
    self.assertEqual(result.stats.correct, [1])
    self.assertEqual(result.stats.guess, [3])
    self.assertAlmostEqual(result.scores[0], (1 + 1e-15) / (3 + 1e-9))

  def test_cider_with_precomputed_df_equals_default(self):
    cands = [['a', 'dog', 'runs'], ['a', 'red', 'bus'], ['two', 'cats']]
    refs = [[['a', 'dog', 'is', 'running'], ['dog', 'runs']],
            [['a', 'bus', 'that', 'is', 'red']],
            [['two', 'cats', 'sleep'], ['cats', 'on', 'a', 'bed']]]
    default = cider.compute(cands, refs)
    df = cider.document_frequency(refs)
    reused = cider.compute(cands, refs, df=df)
    np.testing.assert_allclose(reused.per_image, default.per_image,
                               rtol=1e-12)

  def test_cider_external_df_changes_idf(self):
    cands = [['a', 'dog']]
    refs = [[['a', 'dog']]]
    # With one document idf is 0 for every n-gram; a larger corpus where
    # 'dog' is rare gives a positive score.
    self.assertEqual(cider.compute(cands, refs).score, 0.0)
    df = cider.document_frequency([[['a', 'dog']], [['a', 'cat']],
                                   [['a', 'bird']]])
    self.assertGreater(cider.compute(cands, refs, df=df).score, 0.0)


def _write_temp(test, content):
  directory = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, directory)
  path = os.path.join(directory, 'file.json')
  with open(path, 'w') as f:
    f.write(content)
  return path


class FilesTest(absltest.TestCase):

  def test_missing_file_is_named(self):
    with self.assertRaisesRegex(FileNotFoundError, 'nope.json'):
      coco.load_results('/nonexistent/nope.json')

  def test_bad_json_is_reported_with_position(self):
    path = _write_temp(self, '[{"image_id": 1,')
    with self.assertRaisesRegex(ValueError, 'not valid JSON.*line 1'):
      coco.load_results(path)

  def test_json_cut_inside_a_string_reads_once_at(self):
    path = _write_temp(self, '[{"image_id": 1, "caption": "a ca')
    with self.assertRaises(ValueError) as raised:
      coco.load_results(path)
    self.assertEqual(str(raised.exception),
                     f'Results file {path} is not valid JSON (Unterminated '
                     'string starting at line 1 column 29).')

  def test_results_ids_must_be_in_references(self):
    with self.assertRaisesRegex(ValueError, 'not in the references.*7'):
      coco.score({1: ['a cat']}, {1: 'a cat', 7: 'a dog'}, ('bleu',))

  def test_duplicate_result_is_an_error(self):
    path = _write_temp(self, json.dumps(
        [{'image_id': 1, 'caption': 'a'}, {'image_id': 1, 'caption': 'b'}]))
    with self.assertRaisesRegex(ValueError, 'more than one caption'):
      coco.load_results(path)


if __name__ == '__main__':
  absltest.main()
