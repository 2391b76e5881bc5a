"""Active learning: which unlabeled texts are worth an annotator's time.

Strategies rank a pool (uncertainty, diversity, or both) behind one interface; the shared
template adds what every round needs: a random reserve for unbiased estimates, suppression of
near-duplicates, cold start without a champion. The FAISS index lives behind ``VectorIndex``."""
