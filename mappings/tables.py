"""Mapping tables: how billing codes translate to ERP and tax-engine codes.

Loaded once from the mapping file named in the config (TOML; see ``mapping.example.toml``).
Mappings receive a ``MappingTables`` and never read files themselves.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import ConfigError


@dataclass(frozen=True)
class EntityMapping:
    """What one billing entity (legal entity) maps to."""

    netsuite_subsidiary: str
    avatax_company: str | None = None
    department: str | None = None
    class_: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class FamilyAccounts:
    """GL accounts of one product family (revenue recognition and invoice lines)."""

    revenue_account: str
    deferred_revenue_account: str
    department: str | None = None
    class_: str | None = None


@dataclass(frozen=True)
class TrytonTables:
    """The ``[tryton]`` section: where billing's documents go in a Tryton ERP.

    Accounts are Tryton account codes, looked up in each company's own chart (the connector
    checks them at start); journals are Tryton journal codes.
    """

    #: billing entity -> Tryton company id (each company books in the entity's currency).
    companies: Mapping[str, str]
    #: GL account ids of this file ([product_families], [accounts]) -> Tryton account codes.
    accounts: Mapping[str, str]
    #: billing tax code -> the Tryton account code its tax is booked to.
    taxes: Mapping[str, str]
    #: billing payment method -> the Tryton account code the cash goes to.
    payment_methods: Mapping[str, str]
    receivable_account: str
    refund_account: str
    invoice_journal: str = "REV"
    cash_journal: str = "CASH"
    general_journal: str = "MISC"


@dataclass(frozen=True)
class MappingTables:
    """All lookup tables, keyed by billing codes. Section names match the mapping file."""

    entities: Mapping[str, EntityMapping]
    currencies: Mapping[str, str]
    items: Mapping[str, str]
    tax_codes: Mapping[str, str]
    product_families: Mapping[str, FamilyAccounts]
    accounts: Mapping[str, str] = field(default_factory=dict)
    source: str = "mapping file"
    tryton: TrytonTables | None = None

    def describe(self, table: str) -> str:
        """How an error message names one table, e.g. "mapping file items table"."""
        return f"{self.source} [{table}] table"


_REQUIRED = ("entities", "currencies", "items", "tax_codes", "product_families")


def _as_str_map(data: Any, key: str) -> dict[str, str]:
    if not isinstance(data, dict):
        raise ConfigError(key, "must be a table of code = value")
    out: dict[str, str] = {}
    for code, value in data.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ConfigError(f"{key}.{code}", "must be a string or integer id")
        out[str(code)] = str(value)
    return out


def _entity(data: Any, key: str) -> EntityMapping:
    if not isinstance(data, dict):
        raise ConfigError(key, "must be a table")
    if "netsuite_subsidiary" not in data:
        raise ConfigError(f"{key}.netsuite_subsidiary", "missing: the NetSuite subsidiary id")
    known = {"netsuite_subsidiary", "avatax_company", "department", "class", "location"}
    for extra in set(data) - known:
        raise ConfigError(f"{key}.{extra}", f"unknown setting; expected one of {sorted(known)}")
    return EntityMapping(
        netsuite_subsidiary=str(data["netsuite_subsidiary"]),
        avatax_company=_opt(data.get("avatax_company")),
        department=_opt(data.get("department")),
        class_=_opt(data.get("class")),
        location=_opt(data.get("location")),
    )


def _family(data: Any, key: str) -> FamilyAccounts:
    if not isinstance(data, dict):
        raise ConfigError(key, "must be a table")
    for required in ("revenue_account", "deferred_revenue_account"):
        if required not in data:
            raise ConfigError(f"{key}.{required}", "missing: the GL account id")
    return FamilyAccounts(
        revenue_account=str(data["revenue_account"]),
        deferred_revenue_account=str(data["deferred_revenue_account"]),
        department=_opt(data.get("department")),
        class_=_opt(data.get("class")),
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _tryton(data: Any) -> TrytonTables:
    if not isinstance(data, dict):
        raise ConfigError("tryton", "must be a table")
    known = {
        "companies",
        "accounts",
        "taxes",
        "payment_methods",
        "receivable_account",
        "refund_account",
        "invoice_journal",
        "cash_journal",
        "general_journal",
    }
    for extra in sorted(set(data) - known):
        raise ConfigError(f"tryton.{extra}", f"unknown setting; expected one of {sorted(known)}")
    for required in ("receivable_account", "refund_account"):
        if not isinstance(data.get(required), str) or not data[required]:
            raise ConfigError(f"tryton.{required}", "missing: a Tryton account code")
    journals = {}
    for name in ("invoice_journal", "cash_journal", "general_journal"):
        if name in data:
            if not isinstance(data[name], str) or not data[name]:
                raise ConfigError(f"tryton.{name}", "must be a Tryton journal code")
            journals[name] = data[name]
    return TrytonTables(
        companies=MappingProxyType(_as_str_map(data.get("companies", {}), "tryton.companies")),
        accounts=MappingProxyType(_as_str_map(data.get("accounts", {}), "tryton.accounts")),
        taxes=MappingProxyType(_as_str_map(data.get("taxes", {}), "tryton.taxes")),
        payment_methods=MappingProxyType(
            _as_str_map(data.get("payment_methods", {}), "tryton.payment_methods")
        ),
        receivable_account=data["receivable_account"],
        refund_account=data["refund_account"],
        **journals,
    )


def parse_mapping(data: Mapping[str, Any], source: str = "mapping file") -> MappingTables:
    """Build ``MappingTables`` from parsed TOML. Raises ConfigError naming the bad key."""
    for section in _REQUIRED:
        if section not in data:
            raise ConfigError(section, f"missing section [{section}] in {source}")
    entities = {
        name: _entity(value, f"entities.{name}") for name, value in data["entities"].items()
    }
    families = {
        name: _family(value, f"product_families.{name}")
        for name, value in data["product_families"].items()
    }
    return MappingTables(
        entities=MappingProxyType(entities),
        currencies=MappingProxyType(_as_str_map(data["currencies"], "currencies")),
        items=MappingProxyType(_as_str_map(data["items"], "items")),
        tax_codes=MappingProxyType(_as_str_map(data["tax_codes"], "tax_codes")),
        product_families=MappingProxyType(families),
        accounts=MappingProxyType(_as_str_map(data.get("accounts", {}), "accounts")),
        source=source,
        tryton=_tryton(data["tryton"]) if "tryton" in data else None,
    )


def load_mapping_file(path: str | Path) -> MappingTables:
    """Read and validate the mapping file at ``path``. Raises ConfigError naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("mapping.file", f"file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("mapping.file", f"{path} is not valid TOML: {exc}") from None
    return parse_mapping(data, source=f"mapping file {path.name}")
