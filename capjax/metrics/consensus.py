"""Consensus reranking (m-RNN section 8), vectorised on device.

The n best captions of a beam search are reranked by their consensus with
the captions of the k training images nearest to the query image: each
hypothesis scores the sum of its m largest similarities to those k * R
captions (the paper's "mean similarity of the m nearest captions", times m),
and the best-scoring hypothesis wins (ties: the higher beam rank). The
oracle scores a hypothesis by its mean similarity to the image's own
references.

Sentence similarities, one hypothesis against ONE reference caption, on
word-id arrays (PAD = 0 after the words; no BOS/EOS):
* `bleu`: as the mRNN-CR release computes its sentence BLEU for reranking:
  for n = 1..4 the clipped n-gram matches c_n (each n-gram counted at most
  as often as the reference holds it), precision p_n = c_n / (hypothesis
  n-grams), recall r_n = c_n / (reference n-grams), F_n = 2 p_n r_n /
  (p_n + r_n) (0 when c_n = 0, or when either sentence is shorter than n);
  the similarity is the mean of F_1..F_4. No brevity penalty (recall plays
  its part), no smoothing.
* `cider`: sentence CIDEr-D as the COCO toolkit scores one reference: tf-idf
  vectors of raw n-gram counts with idf = log(D) - log(max(1, df)), df the
  number of TRAINING images whose captions hold the n-gram (D of them);
  clipped dot product min(h, r) * r over both norms; times
  exp(-(l_h - l_r)^2 / (2 * 6^2)) with l the number of bigrams; mean over
  n = 1..4, times 10.

Everything is done with equality tensors of token positions: an n-gram at
position i matches position j when the (n-1)-gram there matches and the
tokens at i + n - 1, j + n - 1 are equal, so no hashing is needed on device;
the count of n-gram occurrences inside and across sentences comes from sums
of those tensors. Document frequencies are looked up on the host
(`DocumentFrequencies`).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

MAX_N = 4
SIGMA = 6.0
KINDS = ('bleu', 'cider')  # the order of `rerank`'s score rows


def _codes(tokens: np.ndarray, n: int, base: int) -> np.ndarray:
  """[..., T] word ids -> [..., T - n + 1] int64 n-gram codes (-1: none)."""
  t = tokens.shape[-1]
  if t < n:
    return np.full(tokens.shape[:-1] + (0,), -1, np.int64)
  code = np.zeros(tokens.shape[:-1] + (t - n + 1,), np.int64)
  valid = np.ones(code.shape, bool)
  for k in range(n):
    part = tokens[..., k:t - n + 1 + k].astype(np.int64)
    code = code * base + part
    valid &= part > 0
  return np.where(valid, code, -1)


@dataclasses.dataclass(frozen=True)
class DocumentFrequencies:
  """n-gram document frequencies of the training captions, by word ids.

  Attributes:
    codes: [MAX_N] sorted int64 codes of the n-grams seen.
    counts: [MAX_N] float64 training images holding each.
    num_documents: D, the number of training images.
    base: the code base (vocabulary size).
  """
  codes: list[np.ndarray]
  counts: list[np.ndarray]
  num_documents: int
  base: int

  @classmethod
  def build(cls, captions: np.ndarray, vocab_size: int
            ) -> 'DocumentFrequencies':
    """captions: [images, R, T] word ids (PAD = 0) of the training split."""
    captions = np.asarray(captions)
    codes, counts = [], []
    images = np.arange(captions.shape[0])[:, None, None]
    for n in range(1, MAX_N + 1):
      c = _codes(captions, n, vocab_size)
      doc = np.broadcast_to(images, c.shape)
      keep = c >= 0
      pairs = np.unique(np.stack([c[keep], doc[keep]], 1), axis=0)
      unique, count = np.unique(pairs[:, 0], return_counts=True)
      codes.append(unique)
      counts.append(count.astype(np.float64))
    return cls(codes, counts, captions.shape[0], vocab_size)

  def idf(self, tokens: np.ndarray) -> list[np.ndarray]:
    """Per n-gram position idf weights, [MAX_N] arrays [..., T - n + 1]."""
    out = []
    log_d = np.log(float(self.num_documents))
    for n in range(1, MAX_N + 1):
      c = _codes(np.asarray(tokens), n, self.base)
      known = self.codes[n - 1]
      df = np.zeros(c.shape)
      if known.size:
        where = np.minimum(np.searchsorted(known, c), known.size - 1)
        hit = (known[where] == c) & (c >= 0)
        df[hit] = self.counts[n - 1][where[hit]]
      out.append((log_d - np.log(np.maximum(df, 1.0))).astype(np.float32))
    return out


def _orders(eq1: jax.Array):
  """eq1 [..., T, T'] token equality -> MAX_N n-gram equality tensors."""
  eqs = [eq1]
  for k in range(1, MAX_N):
    prev = eqs[-1]
    eqs.append(prev[..., :-1, :-1] & eq1[..., k:, k:])
  return eqs


def similarities(hyp: jax.Array, refs: jax.Array, hyp_idf,
                 ref_idf) -> dict[str, jax.Array]:
  """Sentence similarities of every hypothesis with every reference.

  Both kinds at once: they share the n-gram equality tensors.

  Args:
    hyp: [H, T] int32 word ids (PAD = 0 after the words).
    refs: [P, T'] int32 word ids.
    hyp_idf: [MAX_N] arrays [H, T - n + 1] idf weights (for CIDEr-D).
    ref_idf: [MAX_N] arrays [P, T' - n + 1].

  Returns:
    {'bleu': [H, P], 'cider': [H, P]} float32 (module docstring).
  """
  vh, vr = hyp > 0, refs > 0
  len_h = vh.sum(-1).astype(jnp.float32)  # [H]
  len_r = vr.sum(-1).astype(jnp.float32)  # [P]
  eq_hr = _orders((hyp[:, None, :, None] == refs[None, :, None, :])
                  & vh[:, None, :, None] & vr[None, :, None, :])
  eq_hh = _orders((hyp[:, :, None] == hyp[:, None, :])
                  & vh[:, :, None] & vh[:, None, :])
  eq_rr = _orders((refs[:, :, None] == refs[:, None, :])
                  & vr[:, :, None] & vr[:, None, :])
  delta = (jnp.maximum(len_h - 1, 0)[:, None]
           - jnp.maximum(len_r - 1, 0)[None])  # bigram counts, as the toolkit
  length_penalty = jnp.exp(-(delta ** 2) / (2 * SIGMA ** 2))
  bleu, cider = [], []
  for k in range(MAX_N):
    valid_h = vh[:, k:].astype(jnp.float32)  # n-gram at i: words i..i+k
    count_h = eq_hh[k].sum(-1).astype(jnp.float32)  # [H, T-k]
    count_hr = eq_hr[k].sum(-1).astype(jnp.float32)  # [H, P, T-k]
    # Each occurrence carries 1 / count of its n-gram: sums over positions
    # become sums over distinct n-grams.
    share = valid_h[:, None] / jnp.maximum(count_h, 1.0)[:, None]
    clipped = jnp.minimum(count_h[:, None], count_hr)
    matches = jnp.sum(clipped * share, -1)  # [H, P]
    precision = matches / jnp.maximum(len_h - k, 1.0)[:, None]
    recall = matches / jnp.maximum(len_r - k, 1.0)[None]
    f = 2 * precision * recall / jnp.maximum(precision + recall, 1e-30)
    bleu.append(jnp.where(matches > 0, f, 0.0))
    w_h, w_r = hyp_idf[k] ** 2, ref_idf[k] ** 2  # [H, T-k], [P, T'-k]
    num = jnp.sum(clipped * count_hr * share * w_h[:, None], -1)
    norm_h = jnp.sqrt(jnp.sum(valid_h * count_h * w_h, -1))
    valid_r = vr[:, k:].astype(jnp.float32)
    count_r = eq_rr[k].sum(-1).astype(jnp.float32)
    norm_r = jnp.sqrt(jnp.sum(valid_r * count_r * w_r, -1))
    denom = norm_h[:, None] * norm_r[None]
    val = jnp.where(denom > 0, num / jnp.where(denom > 0, denom, 1.0), 0.0)
    cider.append(val * length_penalty)
  return {'bleu': jnp.mean(jnp.stack(bleu), 0),
          'cider': 10.0 * jnp.mean(jnp.stack(cider), 0)}


def nearest(queries: jax.Array, gallery: jax.Array, k: int) -> jax.Array:
  """Indices [Q, k] of the k gallery rows nearest (Euclidean) each query.

  Args:
    queries: [Q, D] float.
    gallery: [N, D] float.
    k: neighbours (at most N).

  Returns:
    [Q, k] int32, nearest first (ties: the lower index).
  """
  q = queries.astype(jnp.float32)
  g = gallery.astype(jnp.float32)
  dist = (jnp.sum(q * q, -1)[:, None] - 2 * q @ g.T
          + jnp.sum(g * g, -1)[None])
  return jax.lax.top_k(-dist, min(k, g.shape[0]))[1]


def consensus_scores(sims: jax.Array, m: jax.typing.ArrayLike) -> jax.Array:
  """[..., H, P] similarities -> [..., H] sums of the m largest.

  The oracle pads its references with empty captions: their similarity,
  0, is never above a real one, so `similarity_matrix` compiles once.
  """
  ranked = -jnp.sort(-sims, axis=-1)
  keep = jnp.arange(sims.shape[-1]) < m
  return jnp.sum(jnp.where(keep, ranked, 0.0), -1)


@functools.partial(jax.jit, static_argnames=('chunk',))
def similarity_matrix(hyps, refs, hyp_idf, ref_idf, chunk: int = 8):
  """Both similarities of every query's hypotheses and references.

  Args:
    hyps: [Q, H, T] int32; refs: [Q, P, T'] int32; idfs as for `rerank`.
    chunk: queries per step of the loop.

  Returns:
    [Q, 2, H, P] float32, BLEU then CIDEr-D (the order of `KINDS`).
  """
  def one(args):
    sims = similarities(*args)
    return jnp.stack([sims[kind] for kind in KINDS])

  q = hyps.shape[0]
  pad = -q % chunk
  args = jax.tree.map(
      lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)),
      (hyps, refs, hyp_idf, ref_idf))
  args = jax.tree.map(lambda x: x.reshape((-1, chunk) + x.shape[1:]), args)
  sims = jax.lax.map(jax.vmap(one), args)
  return sims.reshape((-1,) + sims.shape[2:])[:q]


def rerank(hyps, neighbour_captions, *, m_bleu: int, m_cider: int,
           hyp_idf, ref_idf, chunk: int = 8) -> dict[str, tuple]:
  """Consensus reranking of n-best lists, by BLEU and by CIDEr-D.

  Args:
    hyps: [Q, H, T] int32 word ids of each query's hypotheses, best first.
    neighbour_captions: [Q, P, T'] int32 captions of its k nearest training
      images (P = k * R; all-PAD rows never match).
    m_bleu: the largest BLEU similarities summed.
    m_cider: the largest CIDEr-D similarities summed.
    hyp_idf: [MAX_N] arrays [Q, H, T - n + 1] (`DocumentFrequencies.idf`).
    ref_idf: [MAX_N] arrays [Q, P, T' - n + 1].
    chunk: queries per step of the loop.

  Returns:
    {'bleu': (choice [Q] int32, scores [Q, H]), 'cider': (...)}; the choice
    is the first best (ties go to the higher beam rank).
  """
  sims = similarity_matrix(jnp.asarray(hyps), jnp.asarray(neighbour_captions),
                           [jnp.asarray(x) for x in hyp_idf],
                           [jnp.asarray(x) for x in ref_idf], chunk)
  out = {}
  for i, (kind, m) in enumerate(zip(KINDS, (m_bleu, m_cider))):
    scores = consensus_scores(sims[:, i], m)
    out[kind] = (jnp.argmax(scores, -1).astype(jnp.int32), scores)
  return out


def oracle(hyps, own_refs, *, hyp_idf, ref_idf, pad_to: int = 0,
           chunk: int = 8) -> dict[str, tuple]:
  """The oracle: rerank by the similarity to the image's own R references
  (their sum, i.e. R times the mean).

  Args:
    hyps: [Q, H, T] as for `rerank`.
    own_refs: [Q, R, T'] the image's own reference captions.
    hyp_idf: as for `rerank`.
    ref_idf: [MAX_N] arrays [Q, R, T' - n + 1].
    pad_to: pad the references with empty captions to this many (the
      neighbours' count), so that `rerank`'s compiled program is reused.
    chunk: queries per step of the loop.

  Returns:
    As `rerank`.
  """
  r = own_refs.shape[1]
  extra = max(pad_to - r, 0)

  def pad(x):
    return np.pad(np.asarray(x), [(0, 0), (0, extra), (0, 0)])

  return rerank(hyps, pad(own_refs), m_bleu=r, m_cider=r, hyp_idf=hyp_idf,
                ref_idf=[pad(x) for x in ref_idf], chunk=chunk)
