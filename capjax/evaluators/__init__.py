"""Evaluators: a registry by name; `config.eval.evaluators` picks them."""
