"""Evaluators: a registry by name; `config.eval.evaluators` picks them."""

# name -> module with `Evaluator(config, task, model, meta, split, mesh)`.
REGISTRY = {
    'likelihood_retrieval': 'capjax.evaluators.likelihood_retrieval',
    'consensus_rerank': 'capjax.evaluators.consensus_rerank',
}
