"""Per-word perplexity, m-RNN (Mao et al.) Eq. 5.

log2 PPL(w_1:L | I) = -(1/L) sum_n log2 P(w_n | w_1:n-1, I) for a sentence;
over a set of sentences the per-word perplexity pools all words:
PPL = exp(-sum of log-probs / number of words). Log-probabilities are
natural logs (as `jax.nn.log_softmax` gives); the result does not depend on
the base. Pure jnp, so it runs inside a jitted eval step.
"""

import jax
import jax.numpy as jnp


def sentence_perplexity(log_prob_sum: jax.typing.ArrayLike,
                        num_tokens: jax.typing.ArrayLike) -> jax.Array:
  """Eq. 5 for each sentence.

  Args:
    log_prob_sum: [batch] float, summed natural-log probabilities of each
      sentence's words (EOS included if the model predicts it).
    num_tokens: [batch] int, the words counted in each sum (L).

  Returns:
    [batch] float32 perplexities.
  """
  log_prob_sum = jnp.asarray(log_prob_sum, jnp.float32)
  num_tokens = jnp.asarray(num_tokens, jnp.float32)
  return jnp.exp(-log_prob_sum / num_tokens)


def corpus_perplexity(log_prob_sum: jax.typing.ArrayLike,
                      num_tokens: jax.typing.ArrayLike) -> jax.Array:
  """Per-word perplexity of a set of sentences, all words pooled.

  Args:
    log_prob_sum: [batch] (or scalar) float summed natural-log probabilities.
    num_tokens: [batch] (or scalar) int word counts.

  Returns:
    A float32 scalar: exp(-sum(log_prob_sum) / sum(num_tokens)).
  """
  total = jnp.sum(jnp.asarray(log_prob_sum, jnp.float32))
  count = jnp.sum(jnp.asarray(num_tokens, jnp.float32))
  return jnp.exp(-total / count)


def token_log_probs(logits: jax.typing.ArrayLike,
                    targets: jax.typing.ArrayLike,
                    mask: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Summed log-probabilities and word counts of padded target sequences.

  Args:
    logits: [batch, length, vocab] float scores of the next word.
    targets: [batch, length] int the words that came.
    mask: [batch, length] 1 for real words, 0 for padding.

  Returns:
    (log_prob_sum [batch] float32, num_tokens [batch] float32), the inputs of
    `sentence_perplexity` and `corpus_perplexity`.
  """
  log_probs = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
  picked = jnp.take_along_axis(log_probs, jnp.asarray(targets)[..., None],
                               axis=-1)[..., 0]
  mask = jnp.asarray(mask, jnp.float32)
  return jnp.sum(picked * mask, axis=-1), jnp.sum(mask, axis=-1)


def sentence_log2_perplexity(log_prob_sum: jax.typing.ArrayLike,
                             num_tokens: jax.typing.ArrayLike) -> jax.Array:
  """Eq. 5 as written: log2 PPL(w_1:L | I) = -(1/L) sum_n log2 P(w_n | ...).

  Args:
    log_prob_sum: [batch] summed natural-log probabilities of each sentence.
    num_tokens: [batch] L of each sentence.

  Returns:
    [batch] float32 bits per word.
  """
  log_prob_sum = jnp.asarray(log_prob_sum, jnp.float32)
  return -log_prob_sum / (jnp.asarray(num_tokens, jnp.float32) * jnp.log(2.0))


def split_log2_perplexity(log_prob_sum: jax.typing.ArrayLike,
                          num_tokens: jax.typing.ArrayLike) -> jax.Array:
  """A split's bits per word: Eq. 6's first term, (1/N) sum_i L_i log2 PPL_i.

  It is log2 of `corpus_perplexity` (every word of the split weighs the
  same; a long sentence counts L times).

  Args:
    log_prob_sum: [sentences] summed natural-log probabilities.
    num_tokens: [sentences] word counts L_i.

  Returns:
    A float32 scalar.
  """
  lengths = jnp.asarray(num_tokens, jnp.float32)
  per_sentence = sentence_log2_perplexity(log_prob_sum, lengths)
  return jnp.sum(lengths * per_sentence) / jnp.sum(lengths)
