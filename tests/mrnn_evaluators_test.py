"""The m-RNN evaluators run on a tiny shapes model: likelihood retrieval
(Eq. 7 for image -> sentence, raw P(s | I) for sentence -> image) and
consensus reranking (oracles and consensus choices as the metrics module
makes them)."""

from absl.testing import absltest
import jax
import numpy as np

from capjax import parallel
from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.evaluators import consensus_rerank
from capjax.evaluators import likelihood_retrieval
from capjax.evaluators import split_data
from capjax.metrics import coco
from capjax.metrics import consensus
from capjax.metrics import retrieval
from capjax.metrics import tokenizer
from capjax.models import captioning
from capjax.models.retrieval import likelihood
from capjax.tasks import captioning as captioning_task
from configs.mrnn import shapes as mrnn_shapes


class MRNNEvaluatorsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    config = mrnn_shapes.get_config('tiny')
    config.eval.likelihood.num_images = 8
    config.eval.likelihood.prior_images = 4
    config.eval.max_examples = 8
    config.eval.batch_size = 8
    config.eval.consensus.train_images = 24
    config.eval.max_decode_len = 8
    cls.config = config
    train = split_data.open_split(config, 'train')
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(train))
    cls.meta = {'vocab': vocab.to_json()}
    cls.model = captioning.create(config, len(vocab))
    images = split_data.images(train, 2)
    cls.params = jax.jit(cls.model.init)(jax.random.key(0), images,
                                np.ones((2, 4), np.int32))
    cls.mesh = parallel.make_mesh()

  def test_likelihood_retrieval_ranks_by_eq7_and_by_raw_probability(self):
    evaluator = likelihood_retrieval.Evaluator(
        self.config, None, self.model, self.meta, 'test', self.mesh)
    self.assertTrue(evaluator.fast)
    metrics = evaluator.run(self.params)
    raw, prior = evaluator.scores(self.params)
    self.assertEqual(raw.shape, (8, len(evaluator.caption_image)))
    caption_image = evaluator.caption_image
    # Image -> sentence by P(s | I) / mean_I' P(s | I'), written out.
    eq7 = np.log(np.exp(raw.astype(np.float64))
                 / np.exp(prior.astype(np.float64)).mean(0))
    i2t = retrieval.rank_summary(
        retrieval.image_to_text_ranks(eq7, caption_image))
    t2i = retrieval.rank_summary(
        retrieval.text_to_image_ranks(raw, caption_image))
    for k in ('r1', 'r5', 'r10', 'medr'):
      self.assertAlmostEqual(metrics[f'i2t_{k}'], i2t[k], places=6)
      self.assertAlmostEqual(metrics[f't2i_{k}'], t2i[k], places=6)
    true = raw[caption_image, np.arange(raw.shape[1])]
    words = evaluator.weights.sum(-1)
    self.assertAlmostEqual(metrics['log2_ppl'],
                           -true.sum() / words.sum() / np.log(2), places=4)
    # The evaluator's scores are the adapter's (the fast path is exact).
    adapted = likelihood.score(
        self.model, self.params, evaluator.images, evaluator.inputs,
        evaluator.targets, evaluator.weights, builder=likelihood.adapter)
    np.testing.assert_allclose(raw, adapted, rtol=1e-5, atol=1e-4)

  def test_consensus_rerank_rows(self):
    evaluator = consensus_rerank.Evaluator(
        self.config, None, self.model, self.meta, 'validation', self.mesh)
    chosen = evaluator.choices(self.params)
    hyps = chosen['hyps']
    self.assertEqual(hyps.shape[:2], (8, self.config.eval.consensus.n_best))
    for row in consensus_rerank.ROWS:
      self.assertEqual(chosen[row].shape, (8,))
      self.assertTrue(np.all((chosen[row] >= 0)
                             & (chosen[row] < hyps.shape[1])))
    metrics = evaluator.run(self.params)
    for row in consensus_rerank.ROWS:
      self.assertIn(f'{row}/CIDEr', metrics)
      self.assertIn(f'{row}/caption_accuracy', metrics)
    # 'original' is the top beam, scored like any caption set.
    top = {i: evaluator.vocab.decode(ids)
           for i, ids in zip(evaluator.image_ids, hyps[:, 0])}
    expected = coco.score(evaluator.references, top,
                          metrics=tuple(self.config.eval.metrics))
    self.assertAlmostEqual(metrics['original/CIDEr'], expected['CIDEr'])
    # The oracle's choice maximises the similarity to the own references.
    _, oracle_scores = consensus.oracle(
        hyps, evaluator.own, hyp_idf=evaluator.df.idf(hyps),
        ref_idf=evaluator.df.idf(evaluator.own))['bleu']
    picked = np.asarray(oracle_scores)[np.arange(8), chosen['bleu_oracle']]
    np.testing.assert_allclose(picked, np.asarray(oracle_scores).max(-1))
    # The k/m sweep (similarities once, numpy top-m) agrees with `run`.
    c = self.config.eval.consensus
    records = evaluator.sweep(self.params, [c.k], [c.m_cider, c.m_bleu])
    found = {(r['kind'], r['m']): r for r in records}
    self.assertAlmostEqual(found['bleu', c.m_bleu]['Bleu_4'],
                           metrics['bleu/Bleu_4'])
    self.assertAlmostEqual(found['cider', c.m_cider]['CIDEr'],
                           metrics['cider/CIDEr'])

  def test_rare_words_reach_the_evaluators_as_they_reach_training(self):
    # min_count 120 makes 'three', 'two', 'on' and 'an' rare on tiny shapes.
    config = mrnn_shapes.get_config('tiny')
    config.dataset.min_count = 120
    config.eval.likelihood.num_images = 8
    config.eval.max_examples = 8
    config.eval.consensus.train_images = 24
    train = split_data.open_split(config, 'train')
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(train),
                                  min_count=config.dataset.min_count)
    meta = {'vocab': vocab.to_json()}
    model = captioning.create(config, len(vocab))  # compiled lazily, not run
    unk = {}
    for rare in ('unk', 'drop'):
      config.dataset.rare_words = rare
      lik = likelihood_retrieval.Evaluator(config, None, model, meta, 'test',
                                           self.mesh)
      rerank = consensus_rerank.Evaluator(config, None, model, meta,
                                          'validation', self.mesh)
      unk[rare] = [int(np.sum(x == vocab_lib.UNK_ID)) for x in (
          lik.inputs, lik.targets, rerank.own, rerank.train_caps)]
      # The training batches' encoding of these words.
      batches = pipeline.train_batches(
          captioning_task.without_rare_words(config, vocab, train), vocab,
          batch_size=8, max_len=config.dataset.max_len, seed=0,
          start_step=0, prefetch=0)
      unk[rare].append(int(np.sum(next(iter(batches))['tokens']
                                  == vocab_lib.UNK_ID)))
    self.assertTrue(all(unk['unk']), unk)  # the rare words are there
    self.assertEqual(unk['drop'], [0] * 5)
    # 'drop': each evaluated sentence is its caption's in-vocabulary words,
    # written out here from the tokenizer.
    test = split_data.open_split(config, 'test')
    known = set(vocab.words[len(vocab_lib.SPECIAL_TOKENS):])
    want = [' '.join(w for w in tokenizer.tokenize(c) if w in known)
            for caps in test.captions[:8]
            for c in caps[:config.dataset.captions_per_image]]
    got = [vocab.decode(row) for row in lik.inputs]
    self.assertEqual(got, want)


if __name__ == '__main__':
  absltest.main()
