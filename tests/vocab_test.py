"""Tests of the caption vocabulary."""

import json
import os
import tempfile

from absl.testing import absltest
import numpy as np

from capjax.data import vocab as vocab_lib

CAPTIONS = [
    'A dog runs.',
    'a dog jumps',
    'The cat sleeps, a dog runs!',
    'zebra',
]


def _tempdir(test):
  """A temporary folder removed when `test` ends."""
  return test.enterContext(tempfile.TemporaryDirectory())


class VocabTest(absltest.TestCase):

  def test_special_ids(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    self.assertEqual(
        (vocab_lib.PAD_ID, vocab_lib.BOS_ID, vocab_lib.EOS_ID,
         vocab_lib.UNK_ID), (0, 1, 2, 3))
    self.assertEqual(vocab.words[:4], ('<pad>', '<bos>', '<eos>', '<unk>'))

  def test_words_by_descending_count_then_alphabetical(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    # a: 3, dog: 3, runs: 2, then count 1 alphabetically.
    self.assertEqual(vocab.words[4:], ('a', 'dog', 'runs', 'cat', 'jumps',
                                       'sleeps', 'the', 'zebra'))
    self.assertLen(vocab, 12)

  def test_min_count_drops_rare_words(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS, min_count=2)
    self.assertEqual(vocab.words[4:], ('a', 'dog', 'runs'))
    self.assertEqual(vocab.word_id('zebra'), vocab_lib.UNK_ID)

  def test_build_is_independent_of_caption_order(self):
    self.assertEqual(vocab_lib.Vocab.build(CAPTIONS),
                     vocab_lib.Vocab.build(CAPTIONS[::-1]))

  def test_encode_layout(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    tokens = vocab.encode('A dog, sleeps!', max_len=6)
    np.testing.assert_array_equal(tokens, [1, 4, 5, 9, 2, 0, 0])
    self.assertEqual(tokens.dtype, np.int32)

  def test_unknown_word_encodes_as_unk(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    np.testing.assert_array_equal(vocab.encode('a unicorn', 4),
                                  [1, 4, 3, 2, 0])

  def test_long_caption_is_truncated_and_keeps_eos(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    tokens = vocab.encode('a dog a dog a dog a dog', max_len=4)
    np.testing.assert_array_equal(tokens, [1, 4, 5, 4, 2])
    self.assertEqual(vocab.encode('a dog runs', max_len=4)[-1],
                     vocab_lib.EOS_ID)

  def test_encode_batch_stacks_encode(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    batch = vocab.encode_batch(CAPTIONS, 8)
    self.assertEqual(batch.shape, (4, 9))
    for row, caption in zip(batch, CAPTIONS):
      np.testing.assert_array_equal(row, vocab.encode(caption, 8))

  def test_decode_stops_at_eos_and_skips_pad_and_bos(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    self.assertEqual(vocab.decode([1, 4, 0, 5, 2, 6, 7]), 'a dog')
    self.assertEqual(vocab.decode(np.array([4, 3, 5])), 'a <unk> dog')

  def test_decode_inverts_encode_on_tokenised_text(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    for caption in CAPTIONS:
      self.assertEqual(vocab.decode(vocab.encode(caption, 20)),
                       caption.lower().replace(',', '').replace('.', '')
                       .replace('!', ''))

  def test_decode_rejects_ids_outside_the_vocabulary(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    with self.assertRaisesRegex(ValueError, 'outside'):
      vocab.decode([4, 99])

  def test_save_load_round_trip(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    directory = _tempdir(self)
    path = os.path.join(directory, 'sub', 'vocab.json')
    vocab.save(path)
    loaded = vocab_lib.Vocab.load(path)
    self.assertEqual(loaded, vocab)
    self.assertEqual(loaded.fingerprint, vocab.fingerprint)
    self.assertEqual(os.listdir(os.path.dirname(path)), ['vocab.json'])

  def test_fingerprint_tells_vocabularies_apart(self):
    one = vocab_lib.Vocab.build(CAPTIONS)
    two = vocab_lib.Vocab.build(CAPTIONS, min_count=2)
    self.assertNotEqual(one.fingerprint, two.fingerprint)
    self.assertEqual(one.fingerprint, vocab_lib.Vocab(one.words[4:])
                     .fingerprint)
    self.assertRegex(one.fingerprint, r'^[0-9a-f]{16}$')

  def test_load_missing_file_names_it(self):
    path = os.path.join(_tempdir(self), 'nothing.json')
    with self.assertRaisesRegex(FileNotFoundError, 'nothing.json'):
      vocab_lib.Vocab.load(path)

  def test_load_of_other_json_names_the_file(self):
    path = os.path.join(_tempdir(self), 'other.json')
    with open(path, 'w') as f:
      json.dump({'words': ['a']}, f)
    with self.assertRaisesRegex(ValueError, 'other.json is not a capjax'):
      vocab_lib.Vocab.load(path)

  def test_load_of_non_json_names_the_file(self):
    path = os.path.join(_tempdir(self), 'junk.json')
    with open(path, 'w') as f:
      f.write('not json')
    with self.assertRaisesRegex(ValueError, 'junk.json is not a capjax'):
      vocab_lib.Vocab.load(path)

  def test_load_detects_edited_words(self):
    vocab = vocab_lib.Vocab.build(CAPTIONS)
    path = os.path.join(_tempdir(self), 'vocab.json')
    vocab.save(path)
    with open(path) as f:
      data = json.load(f)
    data['words'][0] = 'edited'
    with open(path, 'w') as f:
      json.dump(data, f)
    with self.assertRaisesRegex(ValueError, 'fingerprint'):
      vocab_lib.Vocab.load(path)

  def test_special_tokens_cannot_be_words(self):
    with self.assertRaisesRegex(ValueError, 'special'):
      vocab_lib.Vocab(['a', '<eos>'])


if __name__ == '__main__':
  absltest.main()
