"""Connectors: one module per external system and transport. They know nothing of the ledger."""
