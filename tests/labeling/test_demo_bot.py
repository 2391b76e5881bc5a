"""The demo's simulated annotator against the real embedded Argilla: it labels as a user of its own
and answers only its own selection rounds, so the round the demo leaves for a person stays theirs,
also when the demo runs again."""

from driftloop.labeling.annotator import AnnotatorLogin, SimulatedAnnotator
from driftloop.labeling.dataset import generations
from driftloop.labeling.server import embedded
from driftloop.platform.cli.demo import BOT, PERSON
from driftloop.platform.selection.rounds import SelectionRequest, run_selection
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task
from tests.labeling.conftest import WORKSPACE
from tests.labeling.labeling_loop import LabelingLoop


def test_the_demo_bot_answers_its_own_rounds_and_never_the_persons(labeling: LabelingLoop) -> None:  # noqa: F811
    # the demo's users, added the way the demo adds them to its embedded Argilla
    started = embedded.up(labeling.server.home, workspace=WORKSPACE, annotators=[BOT, PERSON], redis_url="embedded")
    bot = AnnotatorLogin(labeling.server.url, BOT, started.connection.annotators[BOT])

    def bot_round(budget: int) -> set[int]:
        """A demo learning round, up to the labels: select, push, the bot answers its round."""
        picked = _round(labeling, budget)
        labeling.push()
        with session_scope(labeling.engine) as session:
            dataset = generations(get_task(session, labeling.task))[-1]
        answered = SimulatedAnnotator(labeling.truth.get, BOT).label_in_argilla(bot, dataset, round_id=picked[0])
        assert answered == budget  # its own round's records, no more
        return picked[1]

    first = bot_round(4)
    left_for_the_person = _round(labeling, 3)[1]
    labeling.push()
    again = bot_round(4)  # the demo run again: the person's records wait in the same dataset

    synced = labeling.sync()
    assert synced.responses == 8
    answered = labeling.annotations()
    assert {annotator for _, annotator in answered} == {BOT}  # never as the person
    assert {text_id for text_id, _ in answered} == first | again
    assert not left_for_the_person & {text_id for text_id, _ in answered}


def _round(labeling: LabelingLoop, budget: int) -> tuple[int, set[int]]:  # noqa: F811
    result = run_selection(
        labeling.engine, labeling.settings, SelectionRequest(task=labeling.task, budget=budget), encoder=labeling.encoder
    )
    return result.round_id, {p.text_id for p in result.picks}
