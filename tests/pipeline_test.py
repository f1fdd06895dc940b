"""Tests of the grain input pipelines over the tiny shapes dataset."""

import collections
import itertools
import json
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from capjax.data import pipeline
from capjax.data import shapes
from capjax.data import vocab as vocab_lib

MAX_LEN = 24
TINY = shapes.CONFIGS['tiny']  # 240 / 40 / 40 images, 5 captions each.


class _Unreadable:
  """Records that can be counted but not read."""

  def __init__(self, count):
    self.count = count

  def __len__(self):
    return self.count

  def __getitem__(self, index):
    raise AssertionError(f'record {index} was read')


def _take(iterator, count):
  return list(itertools.islice(iterator, count))


def _assert_batches_equal(test, first, second):
  test.assertEqual(len(first), len(second))
  for a, b in zip(first, second):
    test.assertEqual(a.keys(), b.keys())
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


class PipelineTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.data_dir)
    cls.train = pipeline.load_source('shapes/tiny', 'train',
                                     data_dir=cls.data_dir)
    cls.test = pipeline.load_source('shapes/tiny', 'test',
                                    data_dir=cls.data_dir)
    cls.vocab = vocab_lib.Vocab.build(pipeline.all_captions(cls.train))

  def _train(self, **kwargs):
    args = dict(batch_size=40, max_len=MAX_LEN, seed=0)
    args.update(kwargs)
    return pipeline.train_batches(self.train, self.vocab, **args)

  def test_train_batch_shapes_and_dtypes(self):
    batch = next(self._train(batch_size=8))
    self.assertEqual(
        {k: (v.shape, v.dtype) for k, v in batch.items()},
        {'image': ((8, 64, 64, 3), np.uint8),
         'tokens': ((8, MAX_LEN + 1), np.int32),
         'image_id': ((8,), np.int64)})

  def test_train_example_is_an_image_with_one_of_its_captions(self):
    by_id = dict(zip(self.train.image_ids.tolist(), range(len(self.train))))
    batch = next(self._train(batch_size=16))
    for image, tokens, image_id in zip(
        batch['image'], batch['tokens'], batch['image_id']):
      index = by_id[int(image_id)]
      expected = shapes.generate_example(TINY, 'train', int(image_id))
      np.testing.assert_array_equal(image, expected['image'])
      self.assertIn(self.vocab.decode(tokens),
                    [' '.join(c.replace(':', '').split())
                     for c in self.train.captions[index]])
      self.assertEqual(tokens[0], vocab_lib.BOS_ID)

  def test_multi_caption_batches_hold_every_caption_of_each_image(self):
    by_id = dict(zip(self.train.image_ids.tolist(), range(len(self.train))))
    batch = next(self._train(batch_size=8, captions_per_image=5))
    self.assertEqual(batch['tokens'].shape, (8, 5, MAX_LEN + 1))
    np.testing.assert_array_equal(batch['caption_mask'], np.ones((8, 5)))
    for tokens, image_id in zip(batch['tokens'], batch['image_id']):
      captions = self.train.captions[by_id[int(image_id)]]
      self.assertEqual([self.vocab.decode(t) for t in tokens],
                       [self.vocab.decode(self.vocab.encode(c, MAX_LEN))
                        for c in captions])

  def test_multi_caption_epoch_is_every_image_once_and_resumes(self):
    # 240 images, 40 per step: an epoch is 6 steps.
    batches = _take(self._train(captions_per_image=5, prefetch=0), 12)
    first = np.concatenate([b['image_id'] for b in batches[:6]])
    self.assertCountEqual(first.tolist(), self.train.image_ids.tolist())
    resumed = _take(self._train(captions_per_image=5, start_step=7), 5)
    _assert_batches_equal(self, batches[7:], resumed)

  def test_same_seed_same_batches_other_seed_other_batches(self):
    first = _take(self._train(seed=3), 5)
    again = _take(self._train(seed=3), 5)
    other = _take(self._train(seed=4), 5)
    _assert_batches_equal(self, first, again)
    self.assertFalse(np.array_equal(first[0]['image_id'],
                                    other[0]['image_id']))

  @parameterized.parameters(1, 17, 29, 31)
  def test_resumed_run_sees_the_batches_of_an_uninterrupted_one(self, step):
    # 1200 pairs, 40 per step: epoch boundaries at steps 30, 60, ...
    uninterrupted = _take(self._train(), step + 4)
    resumed = _take(self._train(start_step=step), 4)
    _assert_batches_equal(self, uninterrupted[step:], resumed)

  def test_an_epoch_is_every_pair_once_and_epochs_differ(self):
    batches = _take(self._train(batch_size=40, prefetch=0), 60)
    def pairs(chunk):
      return collections.Counter(
          (int(i), self.vocab.decode(t)) for b in chunk
          for i, t in zip(b['image_id'], b['tokens']))
    all_pairs = collections.Counter(
        (int(i), self.vocab.decode(self.vocab.encode(c, MAX_LEN)))
        for i, captions in zip(self.train.image_ids, self.train.captions)
        for c in captions)
    self.assertEqual(pairs(batches[:30]), all_pairs)
    self.assertEqual(pairs(batches[30:]), all_pairs)
    first_order = np.concatenate([b['image_id'] for b in batches[:30]])
    second_order = np.concatenate([b['image_id'] for b in batches[30:]])
    self.assertFalse(np.array_equal(first_order, second_order))

  @parameterized.parameters(2, 4)
  def test_process_slices_partition_the_global_batch(self, process_count):
    global_batches = _take(self._train(batch_size=16), 3)
    slices = [_take(self._train(batch_size=16, process_index=p,
                                process_count=process_count), 3)
              for p in range(process_count)]
    for step, expected in enumerate(global_batches):
      for key in expected:
        joined = np.concatenate([s[step][key] for s in slices])
        np.testing.assert_array_equal(joined, expected[key])
      self.assertLen(slices[0][step]['image_id'], 16 // process_count)

  def test_image_cache_does_not_change_batches(self):
    uncached = pipeline.load_source('shapes/tiny', 'train',
                                    data_dir=self.data_dir,
                                    cache_images=False)
    self.assertFalse(uncached.cache_images)
    self.assertTrue(self.train.cache_images)
    args = dict(batch_size=8, max_len=MAX_LEN, seed=1)
    _assert_batches_equal(
        self, _take(pipeline.train_batches(uncached, self.vocab, **args), 3),
        _take(pipeline.train_batches(self.train, self.vocab, **args), 3))

  def test_threads_do_not_change_batches(self):
    _assert_batches_equal(
        self, _take(self._train(prefetch=0), 4),
        _take(self._train(prefetch=3, num_threads=2), 4))

  def test_worker_process_gives_the_same_batches(self):
    _assert_batches_equal(self, _take(self._train(prefetch=0), 2),
                          _take(self._train(num_workers=1), 2))

  def _eval(self, **kwargs):
    args = dict(batch_size=16, max_len=MAX_LEN)
    args.update(kwargs)
    return list(pipeline.eval_batches(self.test, self.vocab, **args))

  def test_eval_batches_cover_every_image_once_and_pad_the_last(self):
    batches = self._eval()
    self.assertLen(batches, pipeline.num_eval_batches(self.test, 16))
    self.assertLen(batches, 3)  # 40 images: 16 + 16 + 8 and 8 padding.
    masks = np.concatenate([b['mask'] for b in batches])
    np.testing.assert_array_equal(masks, [1] * 40 + [0] * 8)
    ids = np.concatenate([b['image_id'] for b in batches])
    self.assertCountEqual(ids[:40], self.test.image_ids)
    np.testing.assert_array_equal(ids[40:], -1)
    last = batches[-1]
    self.assertEqual(last['image'][8:].max(), 0)
    self.assertEqual(last['tokens'][8:].max(), 0)
    self.assertEqual(last['caption_mask'][8:].max(), 0)

  def test_eval_batch_shapes_and_dtypes(self):
    batch = self._eval(captions_per_image=6)[0]
    self.assertEqual(
        {k: (v.shape, v.dtype) for k, v in batch.items()},
        {'image': ((16, 64, 64, 3), np.uint8),
         'tokens': ((16, 6, MAX_LEN + 1), np.int32),
         'caption_mask': ((16, 6), np.float32),
         'mask': ((16,), np.float32),
         'image_id': ((16,), np.int64)})
    # Five captions each: the sixth row is missing, all PAD, mask 0.
    np.testing.assert_array_equal(batch['caption_mask'][:, 5], 0)
    np.testing.assert_array_equal(batch['tokens'][:, 5], vocab_lib.PAD_ID)
    np.testing.assert_array_equal(batch['caption_mask'][:, :5], 1)

  def test_eval_tokens_are_the_images_captions(self):
    references = pipeline.references(self.test)
    for batch in self._eval():
      for tokens, image_id, mask in zip(
          batch['tokens'], batch['image_id'], batch['mask']):
        if mask:
          expected = self.vocab.encode_batch(references[int(image_id)],
                                             MAX_LEN)
          np.testing.assert_array_equal(tokens, expected)

  def test_eval_arrays_of_the_first_images_encode_only_those(self):
    full, full_mask = pipeline.eval_arrays(
        self.test, self.vocab, max_len=MAX_LEN, captions_per_image=5)
    encoded = []
    vocab = mock.Mock(wraps=self.vocab)
    vocab.encode_batch.side_effect = (
        lambda captions, max_len: encoded.append(captions)
        or self.vocab.encode_batch(captions, max_len))
    first, first_mask = pipeline.eval_arrays(
        self.test, vocab, max_len=MAX_LEN, captions_per_image=5, count=3)
    np.testing.assert_array_equal(first, full[:3])
    np.testing.assert_array_equal(first_mask, full_mask[:3])
    self.assertLen(encoded, 3)

  @parameterized.parameters(2, 4)
  def test_eval_process_slices_cover_every_image_once(self, process_count):
    per_process = [self._eval(process_index=p, process_count=process_count)
                   for p in range(process_count)]
    self.assertLen({len(batches) for batches in per_process}, 1)
    ids = [i for batches in per_process for b in batches
           for i, m in zip(b['image_id'], b['mask']) if m]
    self.assertCountEqual(ids, self.test.image_ids)
    single = self._eval()
    for step, batch in enumerate(single):
      joined = np.concatenate([p[step]['image_id'] for p in per_process])
      np.testing.assert_array_equal(joined, batch['image_id'])

  def test_references_are_the_generated_captions(self):
    references = pipeline.references(self.test)
    self.assertLen(references, 40)
    for index in (0, 13, 39):
      expected = shapes.generate_example(TINY, 'test', index)
      self.assertEqual(references[expected['image_id']],
                       expected['captions'])

  def test_scenes_are_the_generated_scenes(self):
    scenes = pipeline.scenes(self.test)
    expected = shapes.generate_example(TINY, 'test', 7)
    self.assertEqual(json.loads(scenes[expected['image_id']]),
                     expected['scene'])

  def test_all_captions_lists_every_caption(self):
    self.assertLen(pipeline.all_captions(self.train), 240 * 5)

  def test_caption_index_is_cached_beside_the_data(self):
    expected = self.test.captions  # Reads the records once, saves the index.
    reopened = pipeline.load_source('shapes/tiny', 'test',
                                    data_dir=self.data_dir)
    reopened.records = _Unreadable(len(reopened.records))
    self.assertEqual(reopened.captions, expected)

  def test_bad_arguments_give_clear_errors(self):
    with self.assertRaisesRegex(ValueError, 'multiple of process_count'):
      next(self._train(batch_size=10, process_count=4))
    with self.assertRaisesRegex(ValueError, 'process_index 2'):
      next(self._train(process_index=2, process_count=2))
    with self.assertRaisesRegex(ValueError, "Unknown dataset 'nope'"):
      pipeline.load_source('nope', 'train')
    with self.assertRaisesRegex(ValueError, "no split 'dev'"):
      pipeline.load_source('shapes/tiny', 'dev', data_dir=self.data_dir)
    with self.assertRaisesRegex(ValueError, "Unknown config 'huge'"):
      pipeline.load_source('shapes/huge', 'train', data_dir=self.data_dir)


if __name__ == '__main__':
  absltest.main()
