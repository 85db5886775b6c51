"""Sync: extract from billing, enqueue in the ledger (outbox), push to connectors."""
