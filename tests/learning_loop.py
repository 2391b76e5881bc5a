"""The learning loop the model, selection and labeling tests drive: a task of real BBC News
headlines, labelled in rounds from the corpus's own topics, trained with ``train_round``."""

import uuid
from pathlib import Path

from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.labels.service import import_labels
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import RoundRequest, train_round
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import create_task, get_task

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


class Loop:
    """A task fed with headlines, labelled in rounds, trained with ``train_round``."""

    def __init__(self, engine: Engine, home: Path, headlines: list[tuple[str, str, str]], encoder) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.encoder, self.headlines = engine, encoder, headlines[:900]
        self.task = f"news-{uuid.uuid4().hex[:8]}"
        self.settings = Settings(home=home, database_url=engine.url.render_as_string(hide_password=False))
        with session_scope(engine) as session:
            create_task(session, self.task, TOPICS)
        records = ({"id": i, "text": text} for i, text, _ in self.headlines)
        list(ingest(engine, self.task, enumerate(records), max_text_chars=1000, batch_size=1000))

    def label(self, rows: list[tuple[str, str, str]]) -> None:
        entries = enumerate({"id": i, "label": topic} for i, _, topic in rows)
        list(import_labels(self.engine, self.task, entries, gold=False, default_annotator="sim", eval_fraction=0.2))

    def train(self, **options):  # type: ignore[no-untyped-def]
        return train_round(self.engine, self.settings, RoundRequest(task=self.task, **options), encoder=self.encoder)

    def gate(self, **rules: object) -> None:
        """Set the task's gate rules (``policy="strict"``, tolerances...)."""
        with session_scope(self.engine) as session:
            task = get_task(session, self.task, lock=True)
            task.settings = {**task.settings, "gate": {**task.settings.get("gate", {}), **rules}}

    def champion_version(self) -> int | None:
        with session_scope(self.engine) as session:
            current = registry.champion(session, get_task(session, self.task).id)
            return current.version if current else None
