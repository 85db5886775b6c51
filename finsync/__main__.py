"""``python -m finsync``: the same as the ``finsync`` command."""

from finsync.cli import main

main()
