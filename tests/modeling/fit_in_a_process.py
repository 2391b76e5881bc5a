"""A full-mode fit of a few headlines in a process of its own, checkpointing every 3 steps to the
path it is given, then printing its FitReport as JSON: the checkpoint tests kill it with -9."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from driftloop.platform.corpora import bbc_news
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import Checkpointing, TrainingConfig, TrainingData, fit

LABELS = ["business", "entertainment", "politics", "sports", "tech"]


def main(checkpoint: str) -> None:
    articles = bbc_news()[:40]
    data = TrainingData([a.text.splitlines()[0] for a in articles], np.array([LABELS.index(a.label) for a in articles]))
    model = TextClassifier.fresh("full", LABELS, Encoder.load(), seed=0)
    config = TrainingConfig(epochs=2, batch_size=4, patience=10)
    report = fit(model, data, config, lambda fraction, message: print(message, file=sys.stderr, flush=True), Checkpointing(Path(checkpoint), 3))
    print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main(sys.argv[1])
