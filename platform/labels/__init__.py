"""Annotations (one per annotator and text), the aggregated labels the models learn from, and
the outbox of texts waiting for an annotator."""
