"""What text the store can hold, the same on SQLite and PostgreSQL.

Two kinds of character are refused wherever text enters (ingest, labels, annotators, task and
label names), each with a reason that says where:

- NUL (U+0000): PostgreSQL cannot store it in ``text`` or ``jsonb`` while SQLite can, so
  accepting it would make the two backends disagree. It is rejected, never silently removed:
  the record's content hash and id would otherwise name a text the producer never sent.
- a lone surrogate (U+D800..U+DFFF): JSON's ``"\\ud800"`` escape decodes to one in Python, but
  it is not a character of any valid Unicode string and cannot be written as UTF-8.
"""

import re

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None when it can."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character (U+0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X}, not valid Unicode)"
    return f"contains {what} at character {found.start() + 1}"

