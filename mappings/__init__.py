"""Mappings: pure functions from billing source records to target documents.

No I/O, no clock, no floats. Lookups come from ``MappingTables`` loaded from the mapping file.

May import: ``core`` and ``billing`` (its records and validation), and each other. Nothing of
``finsync``, the connectors, the sync, the reports or the console (import-linter checks it).
"""
