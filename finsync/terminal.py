"""How the command line writes for people: terminal width when there is a terminal."""

from __future__ import annotations

import os
import sys
from typing import TextIO

#: Width of tables written to a file or a pipe (a log, CI, `| less`): wide enough that ids,
#: keys and dates are never cut with an ellipsis.
PIPE_WIDTH = 160


def console_width(stream: TextIO | None = None) -> int | None:
    """None (rich measures the terminal) for a terminal, else ``COLUMNS`` or ``PIPE_WIDTH``."""
    stream = stream or sys.stdout
    if stream.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else PIPE_WIDTH
