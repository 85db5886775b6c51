"""Local servers that stand in for the vendors (NetSuite SOAP and REST, AvaTax) and a real
Tryton started from a template database, for the demo and the tests.

May import: ``core`` and ``finsync.config``. Never ``connectors`` or ``mappings`` (nor the
sync, the reports or the console): a sandbox that shared the client's code would agree with
its bugs (import-linter checks it).
"""
