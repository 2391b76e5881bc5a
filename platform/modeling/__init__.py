"""The model side of the loop: base encoder and embedding cache, classifiers and their
training modes, replay buffers, and the registry of model versions."""
