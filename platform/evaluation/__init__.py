"""Evaluation: metrics per eval slice, and the gate that decides whether a candidate may
replace the champion."""
