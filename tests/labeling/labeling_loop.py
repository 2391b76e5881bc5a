"""The learning loop wired to a real Argilla: picks pushed to the task's dataset, answered there by
simulated annotators through the REST calls the UI makes, synced back as labels."""

from pathlib import Path

import argilla as rg
from sqlalchemy import Engine, select

from driftloop.labeling.annotator import AnnotatorLogin, SimulatedAnnotator
from driftloop.labeling.connection import connect
from driftloop.labeling.dataset import generations
from driftloop.labeling.push import push_pending
from driftloop.labeling.sync import sync
from driftloop.platform.config import Settings
from driftloop.platform.selection.rounds import SelectionRequest, run_selection
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Annotation, AnnotationStatus, Label, TextRecord
from driftloop.platform.tasks import get_task
from tests.learning_loop import Loop


class LabelingLoop(Loop):
    """A task of BBC headlines wired to the embedded Argilla; the headlines' topics are the truth."""

    def __init__(self, engine: Engine, home: Path, headlines, encoder, server) -> None:  # type: ignore[no-untyped-def]
        super().__init__(engine, home, headlines, encoder)
        self.server = server
        self.settings = Settings(
            home=home,
            database_url=engine.url.render_as_string(hide_password=False),
            argilla_url=server.url,
            argilla_api_key=server.api_key,
            argilla_workspace=server.workspace,
        )
        topic_of = {i: topic for i, _, topic in self.headlines}
        with session_scope(engine) as session:
            rows = session.execute(
                select(TextRecord.id, TextRecord.external_id).where(TextRecord.task_id == self.task_id)
            )
            self.truth = {text_id: topic_of[external] for text_id, external in rows}

    @property
    def task_id(self) -> int:
        with session_scope(self.engine) as session:
            return get_task(session, self.task).id

    def select(self, budget: int) -> list[int]:
        result = run_selection(
            self.engine, self.settings, SelectionRequest(task=self.task, budget=budget), encoder=self.encoder
        )
        return [p.text_id for p in result.picks]

    def push(self):  # type: ignore[no-untyped-def]
        return push_pending(self.engine, self.settings, self.task, self.connect, dimensions=self.encoder.dim)

    def sync(self):  # type: ignore[no-untyped-def]
        return sync(self.engine, self.settings, self.task, self.connect, dimensions=self.encoder.dim)

    def connect(self) -> rg.Argilla:
        return connect(self.settings)

    def annotate(self, annotator: str, oracle=None, limit: int | None = None) -> int:  # type: ignore[no-untyped-def]
        login = AnnotatorLogin(self.server.url, annotator, self.server.annotators[annotator])
        with session_scope(self.engine) as session:
            dataset = generations(get_task(session, self.task))[-1]
        return SimulatedAnnotator(oracle or self.truth.get, annotator).label_in_argilla(login, dataset, limit=limit)

    def annotations(self) -> dict[tuple[int, str], tuple[str | None, AnnotationStatus]]:
        with session_scope(self.engine) as session:
            rows = session.scalars(select(Annotation).where(Annotation.task_id == self.task_id))
            return {(a.text_id, a.annotator): (a.label, a.status) for a in rows}

    def labels(self) -> dict[int, Label]:
        with session_scope(self.engine) as session:
            rows = session.scalars(select(Label).where(Label.task_id == self.task_id)).all()
            for row in rows:
                session.expunge(row)
            return {row.text_id: row for row in rows}
