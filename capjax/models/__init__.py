"""Recurrent cells, captioners, encoders and retrieval models."""
