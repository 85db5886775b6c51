"""Sync: extract from billing, enqueue in the ledger (outbox), push to connectors.

May import: ``connectors``, ``mappings``, ``billing``, ``core`` and ``finsync.config``/``db``.
Never the reports, the console, the service or the CLI.
"""
