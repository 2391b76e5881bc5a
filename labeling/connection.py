"""Which Argilla driftloop talks to: the one named by ``DRIFTLOOP_ARGILLA_URL`` (production), else
the embedded server that ``driftloop argilla up`` started under ``DRIFTLOOP_HOME``."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.platform.config import Settings
from driftloop.platform.errors import Unavailable

if TYPE_CHECKING:
    import argilla as rg


class LabelingUnavailable(Unavailable):
    """Argilla is not configured, or does not answer. Work waits; nothing is lost."""

    code = "labeling_unavailable"


@dataclass(frozen=True)
class ArgillaTarget:
    url: str
    api_key: str
    embedded: bool


def target(settings: Settings) -> ArgillaTarget | None:
    if settings.argilla_url:
        if settings.argilla_api_key is None:
            raise LabelingUnavailable("DRIFTLOOP_ARGILLA_URL is set but DRIFTLOOP_ARGILLA_API_KEY is not")
        return ArgillaTarget(settings.argilla_url, settings.argilla_api_key.get_secret_value(), embedded=False)
    from driftloop.labeling.server.embedded import connection  # the embedded server's credentials, if it runs

    running = connection(settings.home)
    return ArgillaTarget(running.url, running.api_key, embedded=True) if running else None


def connect(settings: Settings) -> "rg.Argilla":
    # The SDK takes seconds to import: only pay for it when there is an Argilla to talk to.
    import argilla as rg
    import httpx
    from argilla._exceptions import ArgillaError

    where = target(settings)
    if where is None:
        raise LabelingUnavailable(
            "no Argilla configured: set DRIFTLOOP_ARGILLA_URL and DRIFTLOOP_ARGILLA_API_KEY, "
            "or start the embedded one with `driftloop argilla up`"
        )
    try:
        return rg.Argilla(api_url=where.url, api_key=where.api_key, retries=2, timeout=60)
    except (ArgillaError, httpx.HTTPError) as error:
        raise LabelingUnavailable(f"Argilla at {where.url} does not answer: {type(error).__name__}: {error}") from error
