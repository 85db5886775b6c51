"""Sync: extract from billing, enqueue in the ledger (outbox), push to connectors; and the
locks that coordinate finsync processes on one state store (``locks``).

May import: ``connectors``, ``mappings``, ``billing``, ``core`` and ``finsync.config``/``db``.
Never the reports, the console, the service or the CLI.
"""
