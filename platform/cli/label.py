from dataclasses import dataclass

import typer

from driftloop.platform.cli.console import command_group
from driftloop.platform.cli.jsonl_input import consume_jsonl
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.labels.service import LabelOutcome, LabelStatus, import_labels

app = command_group("Labels: import gold sets and annotators' answers.")


@dataclass
class LabelTally:
    labelled: int = 0
    unchanged: int = 0
    rejected: int = 0

    def count(self, outcomes: list[LabelOutcome]) -> None:
        for outcome in outcomes:
            setattr(self, outcome.status.value, getattr(self, outcome.status.value) + 1)

    def __str__(self) -> str:
        return f"labelled {self.labelled}, unchanged {self.unchanged}, rejected {self.rejected}"


@app.command("import")
def import_(
    name: str = typer.Argument(..., help="Task whose texts are labelled."),
    source: str = typer.Argument(..., metavar="FILE|-", help='JSON Lines file, or "-" for standard input.'),
    split: str = typer.Option("auto", help="'auto': annotators' answers, split train/eval on arrival; 'gold': an ops gold set, never trained on."),
    annotator: str = typer.Option("import", help="Annotator name for records that carry none."),
) -> None:
    """Import labels {"id", "label", "annotator"?} for texts of task NAME (ids as ingested).

    Exit status: 0 nothing rejected, 3 some lines rejected (the others are stored), 2 usage error.
    """
    if split not in ("auto", "gold"):
        raise typer.BadParameter("must be 'auto' or 'gold'", param_hint="--split")
    settings = get_settings()
    engine = current_engine()
    consume_jsonl(
        source,
        f"label {name}",
        lambda entries: import_labels(
            engine,
            name,
            entries,
            gold=split == "gold",
            default_annotator=annotator,
            eval_fraction=settings.eval_fraction,
        ),
        lambda outcome: outcome.status is LabelStatus.rejected,
        LabelTally(),
    )
