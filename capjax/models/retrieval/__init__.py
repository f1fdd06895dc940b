"""Retrieval models and scorers: likelihood retrieval for captioners."""
