"""The sandbox account's records: one thread-safe, normalized store behind SOAP and REST.

Writes are upserts keyed by (record type, externalId). Each is checked the way NetSuite checks
it: references must resolve, reference data must exist in the account setup, the posting
period must be open, journal entries must balance, payments and credit memos may not apply more
than an invoice still owes, and a customer refund pays back only a payment or credit memo of its
customer, at most what that document has left (unapplied, less earlier refunds). A refused
write raises ``RecordError`` with NetSuite's status code and a NetSuite-style message; nothing of
it is stored.

Voids: NetSuite's 2023_2 SOAP endpoint has no void operation, and a direct void leaves the
record with every amount zero and nothing applied. Such records are accepted: zero-amount
invoice and credit lines, and a payment of zero that applies nothing (the one rule relaxed for
them; a negative payment, or a zero one that applies something, is still refused).
``autoApply`` is accepted when false; true is refused (the sandbox does not pick invoices).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from core.money import is_rounded
from sandbox.netsuite.account import AccountSetup, Period
from sandbox.netsuite.records import (
    ADDRESS_BY_NAME,
    FIELD_LENGTHS,
    REFUNDED,
    REFUNDED_TYPES,
    SPECS,
    STORED_TARGETS,
    TRANSACTION_TYPES,
    Field,
    RecordSpec,
    Sublist,
)

ZERO = Decimal(0)


class RecordError(Exception):
    """A record was refused: ``code`` is NetSuite's status detail code, ``message`` its text."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Ref:
    """A reference as it arrived: by internal id, by external id, or both."""

    internal_id: str | None = None
    external_id: str | None = None

    def __str__(self) -> str:
        return self.internal_id if self.internal_id is not None else str(self.external_id)


@dataclass(frozen=True)
class Outcome:
    """A stored write: the record's internal id and whether it was created."""

    internal_id: str
    created: bool


def _required(label: str) -> RecordError:
    return RecordError("USER_ERROR", f"Please enter value(s) for: {label}")


def too_long(name: str, limit: int) -> RecordError:
    """NetSuite's answer to a string longer than the field holds."""
    return RecordError(
        "EXCEEDED_MAX_FIELD_LENGTH",
        f"The field {name} contained more than the maximum number ( {limit} ) of characters "
        "allowed.",
    )


def check_length(field: Field, value: Any) -> None:
    """Raise EXCEEDED_MAX_FIELD_LENGTH when a string (or an address member) is too long."""
    if field.kind == "address":
        for name, member_value in value.items():
            check_length(ADDRESS_BY_NAME[name], member_value)
    elif field.max_length is not None and len(value) > field.max_length:
        raise too_long(field.name, field.max_length)


def check_external_id(external_id: str) -> None:
    """Raise EXCEEDED_MAX_FIELD_LENGTH when an externalId is longer than NetSuite keeps."""
    if len(external_id) > FIELD_LENGTHS["externalId"]:
        raise too_long("externalId", FIELD_LENGTHS["externalId"])


def _invalid_ref(field: Field, value: object, context: str = "") -> RecordError:
    return RecordError(
        "INVALID_KEY_OR_REF", f"Invalid {field.name} reference key {value}{context}."
    )


class Store:
    """Records by type, with internal ids, external-id index and invoice application totals."""

    def __init__(self, setup: AccountSetup) -> None:
        self.setup = setup
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in SPECS}
        self._by_external: dict[str, dict[str, str]] = {t: {} for t in SPECS}
        # invoice internal id -> {(record type, internal id) of payment/credit: amount applied}
        self._applied: dict[str, dict[tuple[str, str], Decimal]] = {}
        self._next_id = 100

    # ---- reads ------------------------------------------------------------------------------

    def get(
        self, record_type: str, *, external_id: str | None = None, internal_id: str | None = None
    ) -> dict[str, Any] | None:
        """The normalized record (a copy, with computed fields), or None when absent."""
        with self._lock:
            if internal_id is None and external_id is not None:
                internal_id = self._by_external[record_type].get(external_id)
            stored = self._records[record_type].get(internal_id or "")
            return None if stored is None else self._view(record_type, stored)

    def records(self, record_type: str) -> list[dict[str, Any]]:
        """Every record of one type, normalized, in creation order."""
        with self._lock:
            return [self._view(record_type, r) for r in self._records[record_type].values()]

    def count(self, record_type: str) -> int:
        """How many records of ``record_type`` the account holds."""
        with self._lock:
            return len(self._records[record_type])

    def find_type(self, internal_id: str, types: frozenset[str] = TRANSACTION_TYPES) -> str | None:
        """The record type among ``types`` holding ``internal_id``, or None."""
        with self._lock:
            return next((t for t in types if internal_id in self._records[t]), None)

    def gl_balances(self, period: str | date | None = None) -> dict[tuple[str, str], Decimal]:
        """Net (debit - credit) per (period ``YYYY-MM``, account) over all journal entries."""
        if isinstance(period, date):
            period = period.strftime("%Y-%m")
        totals: dict[tuple[str, str], Decimal] = {}
        with self._lock:
            for entry in self._records["journalEntry"].values():
                posted = self.setup.period(entry["postingPeriod"])
                assert posted is not None
                if period is not None and posted.key != period:
                    continue
                for line in entry.get("lineList", []):
                    key = (posted.key, line["account"])
                    net = line.get("debit", ZERO) - line.get("credit", ZERO)
                    totals[key] = totals.get(key, ZERO) + net
        return totals

    def _remaining(self, invoice_id: str, exclude: tuple[str, str] | None = None) -> Decimal:
        invoice = self._records["invoice"][invoice_id]
        applied = sum(
            (amt for key, amt in self._applied.get(invoice_id, {}).items() if key != exclude), ZERO
        )
        return _total(invoice) - applied

    def _view(self, record_type: str, stored: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(stored)
        if record_type == "invoice":
            view["total"] = _total(stored)
            view["amountRemaining"] = self._remaining(stored["internalId"])
        elif record_type == "creditMemo":
            view["total"] = _total(stored)
            view["applied"] = _applied_sum(stored)
        elif record_type == "customerPayment":
            view["applied"] = _applied_sum(stored)
            view["unapplied"] = stored["payment"] - view["applied"]
        elif record_type == "customerRefund":
            view["total"] = _applied_sum(stored)
        return view

    # ---- writes -----------------------------------------------------------------------------

    def upsert(self, spec: RecordSpec, external_id: str, values: dict[str, Any]) -> Outcome:
        """Create or update the record of ``spec.type`` with ``external_id``. Raises RecordError.

        ``values`` holds body fields and sublists as parsed from the wire (references as
        ``Ref``). Body fields not given keep their stored value; a sublist given replaces the
        stored one, as NetSuite's default replaceAll does.
        """
        if not external_id:
            raise RecordError("EXTERNALID_REQD", "An externalId is required to upsert a record.")
        with self._lock:
            return self._write(
                spec, self._by_external[spec.type].get(external_id), external_id, values
            )

    def add(self, spec: RecordSpec, external_id: str | None, values: dict[str, Any]) -> Outcome:
        """Create a record; one whose externalId is taken is a duplicate. Raises RecordError."""
        with self._lock:
            if external_id and external_id in self._by_external[spec.type]:
                if spec.type == "customer":
                    raise RecordError("DUP_ENTITY", "This entity already exists.")
                raise RecordError("DUP_RCRD", "This record already exists.")
            return self._write(spec, None, external_id, values)

    def update(self, spec: RecordSpec, ref: Ref, values: dict[str, Any]) -> Outcome:
        """Change an existing record found by internal or external id. Raises RecordError."""
        with self._lock:
            if ref.internal_id is not None:
                current_id = (
                    ref.internal_id if ref.internal_id in self._records[spec.type] else None
                )
            else:
                current_id = self._by_external[spec.type].get(ref.external_id or "")
            if current_id is None:
                raise RecordError("RCRD_DSNT_EXIST", "That record does not exist.")
            stored_external = self._records[spec.type][current_id].get("externalId")
            return self._write(spec, current_id, stored_external or ref.external_id, values)

    def delete(self, record_type: str, internal_id: str) -> None:
        """Remove a record nothing else refers to. Raises RecordError."""
        with self._lock:
            record = self._records[record_type].get(internal_id)
            if record is None:
                raise RecordError("RCRD_DSNT_EXIST", "That record does not exist.")
            if self._has_dependents(record_type, internal_id):
                raise RecordError(
                    "USER_ERROR",
                    "This record cannot be deleted because it has dependent records.",
                )
            del self._records[record_type][internal_id]
            external_id = record.get("externalId")
            if external_id:
                self._by_external[record_type].pop(external_id, None)
            self._index_applications(record_type, {"internalId": internal_id})
            self._applied.pop(internal_id, None)

    def _has_dependents(self, record_type: str, internal_id: str) -> bool:
        if record_type == "invoice":
            credits = self._records["creditMemo"].values()
            return bool(self._applied.get(internal_id)) or any(
                c.get("createdFrom") == internal_id for c in credits
            )
        if record_type == "customer":
            return any(
                r.get("entity", r.get("customer")) == internal_id
                for t in TRANSACTION_TYPES
                for r in self._records[t].values()
            ) or any(
                line.get("entity") == internal_id
                for entry in self._records["journalEntry"].values()
                for line in entry.get("lineList", [])
            )
        return False

    def _write(
        self,
        spec: RecordSpec,
        current_id: str | None,
        external_id: str | None,
        values: dict[str, Any],
    ) -> Outcome:
        if not spec.writable:
            raise RecordError("INVALID_RCRD_TYPE", f"{spec.type} records cannot be written")
        if external_id:
            check_external_id(external_id)
        current = self._records[spec.type].get(current_id or "", {})
        merged: dict[str, Any] = {k: v for k, v in current.items() if k not in _IDS}
        merged.update(values)
        record = self._resolve(spec, merged)
        internal_id = current_id or str(self._next_id)
        self._check(spec, record, internal_id)
        if external_id:
            record["externalId"] = external_id
        record["internalId"] = internal_id
        if current_id is None:
            self._next_id += 1
        self._records[spec.type][internal_id] = record
        if external_id:
            self._by_external[spec.type][external_id] = internal_id
        self._index_applications(spec.type, record)
        return Outcome(internal_id, created=current_id is None)

    def _index_applications(self, record_type: str, record: dict[str, Any]) -> None:
        # Keyed by the applied document's internal id: invoices (payments, credit memos) and
        # the payments and credit memos customer refunds pay back (ids are unique across types).
        key = (record_type, record["internalId"])
        for applied in self._applied.values():
            applied.pop(key, None)
        for line in _applied_lines(record):
            self._applied.setdefault(line["doc"], {})[key] = line["amount"]

    # ---- reference resolution -----------------------------------------------------------------

    def _resolve(self, spec: RecordSpec, merged: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for name, value in merged.items():
            member = spec.member(name)
            if member is None:
                raise RecordError("INVALID_FLD", f"The field {name} is not valid for {spec.type}.")
            if isinstance(member, Sublist):
                record[name] = [self._resolve_line(member, line) for line in value]
            else:
                record[name] = self._resolve_value(member, value)
        return record

    def _resolve_line(self, sublist: Sublist, line: dict[str, Any]) -> dict[str, Any]:
        resolved = {}
        for name, value in line.items():
            member = sublist.field(name)
            if member is None:
                raise RecordError(
                    "INVALID_FLD", f"The field {name} is not valid for sublist {sublist.name}."
                )
            resolved[name] = self._resolve_value(member, value)
        return resolved

    def _resolve_value(self, field: Field, value: Any) -> Any:
        if field.computed:
            raise RecordError("INVALID_FLD", f"The field {field.name} is read-only.")
        if field.kind in ("string", "address"):
            check_length(field, value)
        if not isinstance(value, Ref):
            return value
        target = field.target or field.name
        if target == REFUNDED:
            return self._resolve_refunded(field, value)
        if target in STORED_TARGETS:
            by_ext = self._by_external[target]
            if value.internal_id is not None:
                if value.internal_id in self._records[target]:
                    return value.internal_id
            elif value.external_id is not None and value.external_id in by_ext:
                return by_ext[value.external_id]
            raise _invalid_ref(field, value)
        # Reference data has internal ids only: an external id cannot match anything.
        if value.internal_id is None or value.internal_id not in self.setup.reference_ids(target):
            raise _invalid_ref(field, value)
        return value.internal_id

    def _resolve_refunded(self, field: Field, value: Ref) -> str:
        """The internal id of the payment or credit memo a refund's apply line names."""
        if value.internal_id is None or self.find_type(value.internal_id, REFUNDED_TYPES) is None:
            raise _invalid_ref(field, value, " (no customer payment or credit memo has this id)")
        return value.internal_id

    # ---- business rules -----------------------------------------------------------------------

    def _check(self, spec: RecordSpec, record: dict[str, Any], internal_id: str) -> None:
        if spec.type == "customer":
            self._check_customer(record)
            return
        if "tranDate" not in record:
            raise _required("Date")
        party_field = {
            "customerPayment": "customer",
            "customerRefund": "customer",
            "journalEntry": None,
        }.get(spec.type, "entity")
        customer: dict[str, Any] | None = None
        if party_field is not None:
            if party_field not in record:
                raise _required("Customer")
            customer = self._records["customer"][record[party_field]]
            record.setdefault("subsidiary", customer["subsidiary"])
            record.setdefault("currency", customer["currency"])
            if record["subsidiary"] != customer["subsidiary"]:
                raise RecordError(
                    "INVALID_KEY_OR_REF",
                    f"Invalid subsidiary reference key {record['subsidiary']} for entity "
                    f"{customer['internalId']}.",
                )
        if "subsidiary" not in record:
            raise _required("Subsidiary")
        record.setdefault("currency", self._base_currency_id(record["subsidiary"]))
        record["postingPeriod"] = self._open_period(record).internal_id
        currency = self.setup.currencies[record["currency"]]
        check = {
            "invoice": self._check_sale,
            "creditMemo": self._check_sale,
            "customerPayment": self._check_payment,
            "customerRefund": self._check_refund,
            "journalEntry": self._check_journal,
        }[spec.type]
        check(spec, record, internal_id, currency)
        _check_rounding(spec, record, currency)

    def _check_customer(self, record: dict[str, Any]) -> None:
        if "subsidiary" not in record:
            raise _required("Primary Subsidiary")
        if record.get("isPerson"):
            if not record.get("lastName"):
                raise _required("Last Name")
        elif not record.get("companyName"):
            raise _required("Company Name")
        record.setdefault("currency", self._base_currency_id(record["subsidiary"]))

    def _base_currency_id(self, subsidiary_id: str) -> str:
        iso = self.setup.subsidiaries[subsidiary_id].base_currency
        return next(k for k, v in self.setup.currencies.items() if v == iso)

    def _open_period(self, record: dict[str, Any]) -> Period:
        if "postingPeriod" in record:
            period = self.setup.period(record["postingPeriod"])
            assert period is not None  # resolved against the setup already
        else:
            found = self.setup.period_for(record["tranDate"])
            if found is None:
                raise RecordError(
                    "ACCT_PERIOD_SETUP_REQD",
                    f"No accounting period is set up for {record['tranDate'].isoformat()}.",
                )
            period = found
        if self.setup.is_closed(period):
            raise RecordError(
                "TRAN_PERIOD_CLOSED",
                f"The accounting period {period.name} is closed; transactions cannot post to it.",
            )
        return period

    def _check_sale(
        self, spec: RecordSpec, record: dict[str, Any], internal_id: str, currency: str
    ) -> None:
        lines = record.get("itemList") or []
        if not lines:
            raise _required("Items")
        for number, line in enumerate(lines, start=1):
            if "item" not in line:
                raise _required(f"Item (line {number})")
            if "amount" not in line:
                if "quantity" not in line or "rate" not in line:
                    raise _required(f"Amount (line {number})")
                line["amount"] = line["quantity"] * line["rate"]
        if spec.type == "creditMemo":
            source = record.get("createdFrom")
            if (
                source is not None
                and self._records["invoice"][source]["entity"] != record["entity"]
            ):
                raise RecordError(
                    "INVALID_KEY_OR_REF",
                    f"Invalid createdFrom reference key {source} for entity {record['entity']}.",
                )
            self._check_applications(spec, record, internal_id, limit=_total(record))

    def _check_payment(
        self, spec: RecordSpec, record: dict[str, Any], internal_id: str, currency: str
    ) -> None:
        payment = record.get("payment")
        if payment is None:
            raise _required("Payment Amount")
        if payment < 0:
            raise RecordError("INVALID_AMT", f"The payment amount {payment} must not be negative.")
        # A zero payment is what NetSuite's direct void leaves of a payment (amounts zeroed,
        # nothing applied), so it is accepted when it applies nothing. A real account refuses
        # to *create* an empty payment from scratch; the sandbox does not tell the two apart.
        if payment == 0 and _applied_lines(record):
            raise RecordError(
                "INVALID_AMT", "A payment of zero cannot apply anything: enter a payment amount."
            )
        self._check_applications(spec, record, internal_id, limit=payment)

    def _check_applications(
        self, spec: RecordSpec, record: dict[str, Any], internal_id: str, limit: Decimal
    ) -> None:
        if record.get("autoApply"):
            # NetSuite would pick the open invoices itself (oldest first); the sandbox does not
            # model that choice, so it refuses rather than guess. finsync always sends false.
            raise RecordError(
                "INVALID_FLD_VALUE",
                "The sandbox does not model autoApply = true: send autoApply false and the "
                "applyList lines.",
            )
        party = record.get("customer", record.get("entity"))
        seen: set[str] = set()
        for line in record.get("applyList", []):
            if "doc" not in line:
                raise _required("Doc (apply)")
            if not line.get("apply", False):
                continue
            doc = line["doc"]
            if doc in seen:
                raise RecordError("INVALID_KEY_OR_REF", f"Invoice {doc} is applied twice.")
            seen.add(doc)
            invoice = self._records["invoice"][doc]
            if invoice["entity"] != party:
                raise RecordError(
                    "INVALID_KEY_OR_REF", f"Invalid doc reference key {doc} for entity {party}."
                )
            amount = line.get("amount")
            if amount is None:
                raise _required("Payment (apply)")
            if amount <= 0:
                raise RecordError(
                    "INVALID_AMT", f"The amount applied to invoice {doc} must be positive."
                )
            remaining = self._remaining(doc, exclude=(spec.type, internal_id))
            if amount > remaining:
                raise RecordError(
                    "INVALID_AMT",
                    f"The amount applied to invoice {doc} ({amount}) exceeds its amount "
                    f"remaining ({remaining}).",
                )
        applied = _applied_sum(record)
        if applied > limit:
            raise RecordError(
                "INVALID_AMT",
                f"The total applied ({applied}) exceeds the {spec.type} amount ({limit}).",
            )

    def _check_refund(
        self, spec: RecordSpec, record: dict[str, Any], internal_id: str, currency: str
    ) -> None:
        lines = _applied_lines(record)
        if not lines:
            raise _required("Apply (a customer payment or credit memo to refund)")
        seen: set[str] = set()
        for line in lines:
            doc = line["doc"]
            if doc in seen:
                raise RecordError("INVALID_KEY_OR_REF", f"Transaction {doc} is refunded twice.")
            seen.add(doc)
            source_type = self.find_type(doc, REFUNDED_TYPES)
            assert source_type is not None  # resolved against the store already
            source = self._records[source_type][doc]
            party = source["customer" if source_type == "customerPayment" else "entity"]
            if party != record["customer"] or source["currency"] != record["currency"]:
                raise RecordError(
                    "INVALID_KEY_OR_REF",
                    f"Invalid doc reference key {doc} for customer {record['customer']} in "
                    f"currency {record['currency']}.",
                )
            amount = line.get("amount")
            if amount is None:
                raise _required("Payment (apply)")
            if amount <= 0:
                raise RecordError(
                    "INVALID_AMT", f"The amount refunded from transaction {doc} must be positive."
                )
            left = self._refundable(source_type, source, exclude=(spec.type, internal_id))
            if amount > left:
                raise RecordError(
                    "INVALID_AMT",
                    f"The amount refunded from transaction {doc} ({amount}) exceeds what it "
                    f"has left to refund ({left}).",
                )

    def _refundable(
        self, source_type: str, source: dict[str, Any], exclude: tuple[str, str]
    ) -> Decimal:
        """What a payment (its unapplied cash) or credit memo (its unapplied credit) has left
        after the refunds of it other than ``exclude``."""
        amount = source["payment"] if source_type == "customerPayment" else _total(source)
        refunded = sum(
            (
                amt
                for key, amt in self._applied.get(source["internalId"], {}).items()
                if key[0] == "customerRefund" and key != exclude
            ),
            ZERO,
        )
        return amount - _applied_sum(source) - refunded

    def _check_journal(
        self, spec: RecordSpec, record: dict[str, Any], internal_id: str, currency: str
    ) -> None:
        lines = record.get("lineList") or []
        if len(lines) < 2:
            raise RecordError(
                "JE_LINE_MISSING_REQD_DATA", "A journal entry needs two lines or more."
            )
        debits = credits = ZERO
        for number, line in enumerate(lines, start=1):
            if "account" not in line:
                raise _required(f"Account (line {number})")
            debit, credit = line.get("debit"), line.get("credit")
            if (debit is None) == (credit is None) or (debit or credit or ZERO) < 0:
                raise RecordError(
                    "JE_LINE_MISSING_REQD_DATA",
                    f"Line {number} must have either a debit or a credit, not negative.",
                )
            debits += debit or ZERO
            credits += credit or ZERO
        if debits != credits:
            raise RecordError(
                "JE_AMOUNTS_MUST_BALANCE",
                f"The journal entry does not balance: debits {debits}, credits {credits}.",
            )


_IDS = ("externalId", "internalId")


def _total(record: dict[str, Any]) -> Decimal:
    return sum(
        (line["amount"] + line.get("tax1Amt", ZERO) for line in record.get("itemList", [])), ZERO
    )


def _applied_lines(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in record.get("applyList", []) if line.get("apply", False)]


def _applied_sum(record: dict[str, Any]) -> Decimal:
    return sum((line["amount"] for line in _applied_lines(record)), ZERO)


def _check_rounding(spec: RecordSpec, record: dict[str, Any], currency: str) -> None:
    """Amounts may not carry more decimals than the transaction currency has."""

    def check(field: Field, value: Any, where: str) -> None:
        if field.kind == "amount" and not is_rounded(value, currency):
            raise RecordError(
                "INVALID_AMT",
                f"The {field.name}{where} {value} has more decimals than {currency} allows.",
            )

    for member in spec.members:
        if isinstance(member, Sublist):
            for number, line in enumerate(record.get(member.name, []), start=1):
                for name, value in line.items():
                    sub_field = member.field(name)
                    assert sub_field is not None
                    check(sub_field, value, f" on {member.name} line {number}")
        elif member.name in record:
            check(member, record[member.name], "")
