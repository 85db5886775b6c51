"""The core: plain types and rules every layer may use.

It holds the target document model (``documents``: ``Document``, ``DocKey``, ``WriteResult``),
accounting periods (``periods``), money rounding per currency (``money``), the error taxonomy
(``errors``) and NetSuite's country enumeration (``netsuite_countries``, a generated table).

May import: the standard library and plain third-party libraries (babel). Imports nothing of
finsync, so that mappings, connectors, the sync and the sandboxes can all stand on it.
"""
