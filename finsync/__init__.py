"""finsync: billing database to ERP and tax engine, with a per-record ledger and a workbook."""

__version__ = "0.1.0"
