"""The labeling loop through Argilla's own UI: a headless Chromium (the Debian ``chromium``, driven by
Playwright, see ``tests/browser.py``) logs in as an annotator, opens the
round's dataset, picks the headline's topic and submits it; ``sync`` then brings the label into the
store."""

import re
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import AnnotationStatus, TextRecord
from driftloop.platform.tasks import get_task
from tests.browser import launch_chromium
from tests.labeling.labeling_loop import LabelingLoop

ANNOTATOR = "annotator-1"
UI_TIMEOUT_MS = 60_000  # generous: CI machines are small and busy


def _sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your datasets")).to_be_visible()


def test_an_annotator_labels_a_record_in_the_argilla_ui_and_sync_stores_it(
    labeling: LabelingLoop,  # noqa: F811
    tmp_path: Path,
) -> None:
    picked = labeling.select(3)
    assert labeling.push().pushed == 3
    with session_scope(labeling.engine) as session:
        # as the page shows them: Playwright matches text with whitespace normalized
        text_of = {text_id: " ".join(session.get(TextRecord, text_id).text.split()) for text_id in picked}
        topics = [label.name for label in get_task(session, labeling.task).labels]
    id_of = {text: text_id for text_id, text in text_of.items()}
    assert len(id_of) == 3
    dataset = labeling.connect().datasets(name=labeling.task, workspace=labeling.server.workspace)
    password = labeling.server.annotators[ANNOTATOR]

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)

            _sign_in(page, labeling.server.url, ANNOTATOR, password)

            # the home page lists the round's dataset: open it like an annotator would
            page.get_by_role("heading", name=labeling.task, exact=True).click()
            page.wait_for_url(re.compile(rf"/dataset/{dataset.id}/annotation-mode"))

            # one of the pushed headlines is shown, with the task's topics as the label options
            record = page.get_by_role("region", name="Focus Annotation View")
            any_pushed = re.compile("^(" + "|".join(re.escape(t) for t in text_of.values()) + ")$")
            shown_text = record.get_by_text(any_pushed)
            expect(shown_text).to_be_visible()
            shown = " ".join(shown_text.inner_text().split())
            text_id = id_of[shown]
            topic = labeling.truth[text_id]
            form = page.get_by_role("form", name="Annotation Questions")
            options = form.get_by_role("group", name="Label-Options")
            for name in topics:
                expect(options.get_by_role("button", name=name, exact=True)).to_be_visible()
            expect(page.get_by_label("Current Record")).to_have_text("1")
            page.screenshot(path=tmp_path / "argilla-record.png")

            options.get_by_role("button", name=topic, exact=True).click()
            expect(form.locator(f"input[type=checkbox][name='{topic}']")).to_be_checked()
            submit = form.get_by_role("button", name="Submit")
            expect(submit).to_be_enabled()
            with page.expect_response(
                lambda r: (
                    r.request.method == "POST" and re.search(r"/api/v1/records/[^/]+/responses$", r.url) is not None
                )
            ) as answered:
                submit.click()
            assert answered.value.status == 201, answered.value.text()
            saved = answered.value.json()
            assert saved["status"] == "submitted" and saved["values"]["label"]["value"] == topic

            # the UI moves on to the next pending record and counts the submission
            expect(record.get_by_text(shown, exact=True)).to_be_hidden()
            expect(record.get_by_text(any_pushed)).to_be_visible()
            team_progress = page.locator("[aria-label='Team Annotation-Progress']")  # no role: it sits in a button
            expect(team_progress).to_have_attribute("aria-valuenow", "33.33")  # 1 of the 3 records done
            page.wait_for_load_state("networkidle")  # the progress counters have refreshed
            screenshot = tmp_path / "argilla-annotation.png"
            page.screenshot(path=screenshot)
        finally:
            browser.close()

    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    assert (tmp_path / "argilla-record.png").stat().st_size > 10_000

    synced = labeling.sync()
    assert synced.responses == 1
    assert labeling.annotations() == {(text_id, ANNOTATOR): (topic, AnnotationStatus.submitted)}
    labels = labeling.labels()
    assert set(labels) == {text_id} and labels[text_id].label == topic
