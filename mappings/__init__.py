"""Mappings: pure functions from billing source records to target documents.

No I/O, no clock, no floats. Lookups come from ``MappingTables`` loaded from the mapping file.
"""
