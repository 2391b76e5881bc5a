"""A long training (full or lora) that is killed resumes from its last checkpoint: a real process
killed with -9 after a checkpoint, then the same fit again, whose step counter continues and
whose epochs come out as an uninterrupted fit's."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO


def _fit(checkpoint: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.modeling.fit_in_a_process", str(checkpoint)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def _report(process: subprocess.Popen) -> dict:  # type: ignore[type-arg]
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0
    return json.loads(out)


@pytest.mark.timeout(900)
def test_a_fit_killed_after_a_checkpoint_resumes_there_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    uninterrupted = _report(_fit(tmp_path / "whole" / "fit.pt"))
    assert uninterrupted["steps"] == 18 and uninterrupted["resumed_from_step"] is None  # 2 epochs of 9 batches

    checkpoint = tmp_path / "killed" / "fit.pt"
    first = _fit(checkpoint)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() or torch.load(checkpoint, weights_only=False)["state"]["step"] < 6:
        assert first.poll() is None and time.monotonic() < deadline, "the fit ended before it could be killed"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    saved_step = torch.load(checkpoint, weights_only=False)["state"]["step"]

    resumed = _report(_fit(checkpoint))

    assert resumed["resumed_from_step"] == saved_step >= 6  # it did not start over
    assert resumed["steps"] == 18  # the counter went on from there to the same end
    for whole, again in zip(uninterrupted["history"], resumed["history"], strict=True):
        assert again["loss"] == pytest.approx(whole["loss"], rel=1e-4)
        assert again["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-4)


def test_a_checkpoint_of_other_data_is_not_used(tmp_path: Path) -> None:
    import numpy as np

    from driftloop.platform.modeling.encoder import Encoder
    from driftloop.platform.modeling.model import TextClassifier
    from driftloop.platform.modeling.training import Checkpointing, TrainingConfig, TrainingData, fit

    encoder = Encoder.load()
    texts = ["shares fell", "the match was won", "a new phone", "votes were counted", "the film opened", "rates rose"]
    checkpoint = Checkpointing(tmp_path / "fit.pt", every_steps=1)
    config = TrainingConfig(epochs=2, batch_size=2)
    fit(TextClassifier.fresh("lora", ["a", "b"], encoder, 0), TrainingData(texts, np.array([0, 1, 0, 1, 0, 1])), config, checkpointing=checkpoint)
    relabelled = TrainingData(texts, np.array([1, 0, 1, 0, 1, 0]))  # new answers arrived since: start over
    report = fit(TextClassifier.fresh("lora", ["a", "b"], encoder, 0), relabelled, config, checkpointing=checkpoint)
    assert report.resumed_from_step is None and report.steps == 6
