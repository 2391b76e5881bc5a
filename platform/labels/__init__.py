"""Annotations (one per annotator and text) and the aggregated labels the models learn from."""
