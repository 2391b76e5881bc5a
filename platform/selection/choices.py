"""The names a user picks a selection strategy by.

They live apart from the strategies (numpy, scipy, faiss) so that a schedule's parameters can be
checked when it is added without importing them; tests/test_schedules.py checks the two agree."""

STRATEGY_NAMES = ("random", "least-confidence", "margin", "entropy", "kmeans", "kcenter", "hybrid")
