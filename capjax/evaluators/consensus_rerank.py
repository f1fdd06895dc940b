"""Consensus reranking (m-RNN section 8) of one split: Table 8's rows.

For each image of the split: the `eval.consensus.n_best` captions of a beam
search (best first), the `k` nearest training images in the raw encoder
feature space or the m-RNN's refined one `g2(V_I I)`
(`eval.consensus.space`), and the captions of those images as references.
The hypotheses are reranked by BLEU-consensus (sum of the `m_bleu` largest
sentence-BLEU similarities) and by CIDEr-consensus (`m_cider`, CIDEr-D with
training document frequencies), and by both oracles (the mean similarity to
the image's own references); see `capjax.metrics.consensus`. Each choice is
scored with the COCO metrics (and caption accuracy on shapes); keys
`<row>/<metric>` with rows `original` (the top beam), `bleu`, `cider`,
`bleu_oracle` and `cider_oracle`, and `<row>/changed`, the share of images
whose choice is not the top beam.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import atomic_write
from capjax import decoding
from capjax import parallel
from capjax import progress
from capjax.data import pipeline
from capjax.data import shapes
from capjax.evaluators import split_data
from capjax.metrics import coco
from capjax.metrics import consensus
from capjax.models.captioners import mrnn as mrnn_lib

ROWS = ('original', 'bleu', 'cider', 'bleu_oracle', 'cider_oracle')
SPACES = ('refined', 'raw')


class Evaluator:
  """Consensus reranking metrics of one split (module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict, task, model, meta,
               split: str, mesh: jax.sharding.Mesh | None = None):
    c = config.eval.consensus
    if c.space not in SPACES:
      raise ValueError(f'eval.consensus.space must be one of {SPACES}, got '
                       f'{c.space!r}.')
    if c.space == 'refined' and not isinstance(model.decoder, mrnn_lib.MRNN):
      raise ValueError("eval.consensus.space='refined' needs the m-RNN "
                       "(model.decoder='mrnn'); use 'raw'.")
    self.config, self.model, self.split = config, model, split
    self.mesh = mesh or parallel.make_mesh(config.parallel.num_devices)
    self.vocab = split_data.vocab_of(task, meta)
    source = split_data.open_split(config, split)
    count = config.eval.max_examples or len(source)
    self.images = split_data.images(source, count)
    refs = pipeline.references(source)
    self.image_ids = [int(i) for i in source.image_ids[:len(self.images)]]
    self.references = {i: refs[i] for i in self.image_ids}
    self.scenes = (pipeline.scenes(source) if config.dataset.name == 'shapes'
                   else None)
    per_image = config.dataset.captions_per_image
    max_len = config.dataset.max_len
    own, _ = split_data.captions(config, source, self.vocab,
                                 count=len(self.images), per_image=per_image)
    self.own = split_data.words_only(own)  # [Q, R, T]
    train = split_data.open_split(config, 'train')
    self.train_images = split_data.images(train, c.train_images)
    train_caps, _ = split_data.captions(
        config, train, self.vocab, count=len(self.train_images),
        per_image=per_image)
    self.train_caps = split_data.words_only(train_caps)  # [N, R, T]
    self.df = consensus.DocumentFrequencies.build(self.train_caps,
                                                  len(self.vocab))
    self.batch = config.eval.batch_size
    parallel.check_batch_size(self.batch, self.mesh.size,
                              'config.eval.batch_size')
    n_best, decode_len = c.n_best, config.eval.max_decode_len or max_len
    replicated = parallel.replicated_sharding(self.mesh)
    sharded = parallel.data_sharding(self.mesh)

    def decode_and_embed(params, images):
      step_fn, carry = model.decoder_fns(params, images)
      sequences, _ = decoding.decode(step_fn, carry, method='beam',
                                     beam_size=n_best, max_len=decode_len)
      return sequences, self._embed(params, images)

    self._decode = jax.jit(decode_and_embed,
                           in_shardings=(replicated, sharded),
                           out_shardings=sharded)
    self._features = jax.jit(self._embed, in_shardings=(replicated, sharded),
                             out_shardings=sharded)
    self.metrics: dict[str, float] = {}
    self.captions: dict[str, dict[int, str]] = {}

  def _embed(self, params, images):
    """The kNN feature space: [batch, D]."""
    features = self.model.encode(params, images)
    if self.config.eval.consensus.space == 'raw':
      return features[0]
    return self.model.decoder.apply({'params': params['decoder']}, features,
                                    method='refined_image')

  @property
  def _label(self) -> str:
    return f'consensus_rerank {self.split}'

  @staticmethod
  def _similarity_work(hyps, refs, passes: int) -> str:
    """Names the similarity program's work for its progress lines."""
    q, h, p = hyps.shape[0], hyps.shape[1], refs.shape[1]
    return (f'BLEU and CIDEr-D similarities of {q} images x {h} hypotheses x '
            f'{p} neighbour captions ({q * h * p * passes} pairs in '
            f'{passes} program{"s" if passes > 1 else ""})')

  def _batches(self, images, what: str):
    """(real count, padded batch) of `images`, a progress line for `what`.
    """
    bar = progress.bar(len(images), 'images', f'{self._label}: {what}')
    for start in range(0, len(images), self.batch):
      chunk = images[start:start + self.batch]
      pad = self.batch - len(chunk)
      yield len(chunk), np.concatenate(
          [chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      bar.update(len(chunk))  # the caller has its results on the host now
    bar.close()

  def hypotheses(self, params) -> tuple[np.ndarray, np.ndarray]:
    """(n-best word ids [Q, n, T], query features [Q, D]) of the split."""
    seqs, feats = [], []
    for real, batch in self._batches(self.images, 'beam search'):
      with jax.set_mesh(self.mesh):  # see `parallel.constrain_batch`
        s, f = self._decode(params, batch)
      seqs.append(np.asarray(s)[:real])
      feats.append(np.asarray(f)[:real])
    return (split_data.words_only(np.concatenate(seqs)),
            np.concatenate(feats))

  def train_features(self, params) -> np.ndarray:
    """[N, D] training-image features in the kNN space."""
    out = [np.asarray(self._features(params, b))[:real]
           for real, b in self._batches(self.train_images,
                                        'training-image features')]
    return np.concatenate(out)

  def choices(self, params) -> dict[str, np.ndarray]:
    """Row name -> the chosen hypothesis of each image [Q], and 'hyps'."""
    c = self.config.eval.consensus
    params = parallel.replicate(params, self.mesh)
    hyps, query = self.hypotheses(params)
    train = self.train_features(params)
    neighbours = np.asarray(consensus.nearest(query, train, c.k))
    refs = self.train_caps[neighbours].reshape(len(hyps), -1,
                                               self.train_caps.shape[-1])
    hyp_idf = self.df.idf(hyps)
    with progress.program(self._label, self._similarity_work(hyps, refs, 2)):
      consensus_choice = consensus.rerank(
          hyps, refs, m_bleu=c.m_bleu, m_cider=c.m_cider, hyp_idf=hyp_idf,
          ref_idf=self.df.idf(refs))
      oracle_choice = jax.block_until_ready(consensus.oracle(
          hyps, self.own, hyp_idf=hyp_idf, ref_idf=self.df.idf(self.own),
          pad_to=refs.shape[1]))
    out = {'hyps': hyps, 'original': np.zeros(len(hyps), np.int32)}
    for kind in consensus.KINDS:
      out[kind] = np.asarray(consensus_choice[kind][0])
      out[f'{kind}_oracle'] = np.asarray(oracle_choice[kind][0])
    return out

  def sweep(self, params, ks, ms) -> list[dict]:
    """BLEU-4 and CIDEr of both consensus rerankings for each (k, m).

    The hypotheses, features and the similarities to the max(ks) nearest
    images' captions are computed once; k keeps the nearest k of them.

    Returns:
      One record per (kind, k, m): {'kind', 'k', 'm', 'Bleu_4', 'CIDEr'}.
    """
    params = parallel.replicate(params, self.mesh)
    hyps, query = self.hypotheses(params)
    train = self.train_features(params)
    neighbours = np.asarray(consensus.nearest(query, train, max(ks)))
    per_image = self.train_caps.shape[1]
    refs = self.train_caps[neighbours].reshape(len(hyps), -1,
                                               self.train_caps.shape[-1])
    with progress.program(self._label, self._similarity_work(hyps, refs, 1)):
      sims = np.asarray(consensus.similarity_matrix(
          hyps, refs, [jnp.asarray(x) for x in self.df.idf(hyps)],
          [jnp.asarray(x) for x in self.df.idf(refs)]))
    records = []
    for k in ks:
      ranked = -np.sort(-sims[..., :k * per_image], axis=-1)
      sums = np.cumsum(ranked, axis=-1)  # [Q, 2, H, k * R]
      for m in ms:
        for i, kind in enumerate(consensus.KINDS):
          choice = np.argmax(sums[:, i, :, min(m, sums.shape[-1]) - 1], -1)
          picks = hyps[np.arange(len(hyps)), choice]
          results = {j: self.vocab.decode(ids)
                     for j, ids in zip(self.image_ids, picks)}
          scores = coco.score(self.references, results,
                              metrics=('bleu', 'cider'))
          records.append(dict(kind=kind, k=k, m=m, Bleu_4=scores['Bleu_4'],
                              CIDEr=scores['CIDEr']))
    return records

  @staticmethod
  def metric_names(config: ml_collections.ConfigDict) -> set[str]:
    keys = {k for m in config.eval.metrics for k in coco.KEYS.get(m, ())}
    if config.dataset.name == 'shapes':
      keys.add('caption_accuracy')
    names = {f'{row}/{k}' for row in ROWS for k in keys}
    return names | {f'{row}/changed' for row in ROWS if row != 'original'}

  def run(self, params) -> dict[str, float]:
    """COCO metrics of every row of the module docstring."""
    chosen = self.choices(params)
    hyps = chosen['hyps']
    out = {}
    for row in ROWS:
      picks = hyps[np.arange(len(hyps)), chosen[row]]
      results = {i: self.vocab.decode(ids)
                 for i, ids in zip(self.image_ids, picks)}
      self.captions[row] = results
      scores = coco.score(self.references, results,
                          metrics=tuple(self.config.eval.metrics))
      out.update({f'{row}/{k}': float(v) for k, v in scores.items()})
      if self.scenes is not None:
        out[f'{row}/caption_accuracy'] = float(
            shapes.caption_accuracy(results, self.scenes))
      if row != 'original':
        out[f'{row}/changed'] = float(np.mean(chosen[row] != 0))
    self.metrics = out
    return out

  def write(self, workdir: str) -> None:
    """`<workdir>/eval/consensus_rerank_<split>.json` (process 0)."""
    if jax.process_index() != 0:
      return
    atomic_write.write_json(
        os.path.join(workdir, 'eval', f'consensus_rerank_{self.split}.json'),
        {'metrics': self.metrics,
         'captions': {row: {str(k): v for k, v in caps.items()}
                      for row, caps in self.captions.items()}}, indent=1)
