"""Retrieval models and scorers.

Joint embeddings (alignment, common space) and likelihood retrieval for
captioners.
"""
