"""finsync: billing database to ERP and tax engine, with a per-record ledger and a monthly workbook."""

__version__ = "0.1.0"
