"""Serving: the champions each API process holds, their batchers, and the prediction service."""
