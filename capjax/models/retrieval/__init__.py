"""Joint-embedding retrieval models (alignment, common space) and scorers."""
