"""The billing side: the source contract (``schema``: the tables finsync reads), the frozen
source records (``records``), the contract's invariants (``validation``) and a deterministic
demo data generator (``generator``, a package by record kind, and ``catalog``).

May import: ``core`` and ``finsync.db`` (column types). Nothing of the targets.
"""
