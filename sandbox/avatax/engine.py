"""The tax engine behind the AvaTax sandbox: documents and their states (the account's
companies and rates are in ``rates``, what it refuses in ``faults``).

It checks what arrives the way AvaTax does (required fields, known company, a usable address,
numbers where the API wants numbers), computes tax from a small rate table, honours tax
overrides, and keeps documents keyed by (company code, document code, document type) through
their states: Saved, Committed, Cancelled (voided), and locked once "reported".

Failures are ``AvaTaxFault``s carrying the HTTP status and AvaTax's own error code, which the
server renders in AvaTax's error shape. Amounts are Decimal throughout.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import get_currency_precision, list_currencies

from sandbox.avatax.faults import AvaTaxFault, check_lengths, fault
from sandbox.avatax.rates import COMPANIES, Jurisdiction, jurisdiction

#: $include values AvaTax documents for transactions; anything else is ignored, as AvaTax does.
INCLUDES = frozenset({"Lines", "Details", "Summary", "Addresses", "SummaryOnly", "LinesOnly"})

_RECORDED_TYPES = ("SalesInvoice", "ReturnInvoice")
_ESTIMATE_TYPES = ("SalesOrder", "ReturnOrder")
_ZERO = Decimal(0)


class TaxEngine:
    """Documents of the sandbox account, thread-safe. Values inside are Decimal, never float."""

    def __init__(self, now: Any = None) -> None:
        self._lock = threading.Lock()
        self._now = now or (lambda: datetime.now(UTC))
        self._docs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._ids = itertools.count(90_000_001)

    # -- API operations -------------------------------------------------------------------

    def create_or_adjust(self, body: Any) -> tuple[dict[str, Any], bool]:
        """CreateOrAdjustTransaction. Returns (TransactionModel, recorded)."""
        if not isinstance(body, dict) or not isinstance(body.get("createTransactionModel"), dict):
            raise fault(
                "ModelRequiredException",
                "createTransactionModel is required.",
                ref="createTransactionModel",
            )
        return self._record(body["createTransactionModel"], adjust=True)

    def create(self, body: Any) -> tuple[dict[str, Any], bool]:
        """CreateTransaction: like CreateOrAdjust, but a committed document with the same code
        is TransactionAlreadyExists. Returns (TransactionModel, recorded)."""
        if not isinstance(body, dict):
            raise fault("ModelRequiredException", "The transaction model is required.")
        return self._record(body, adjust=False)

    def _record(self, model: Mapping[str, Any], *, adjust: bool) -> tuple[dict[str, Any], bool]:
        doc = self._compute(model)
        if doc["type"] not in _RECORDED_TYPES:
            # Estimates are computed and answered but never recorded.
            doc["id"] = 0
            doc["status"] = "Temporary"
            return doc, False
        key = (doc["companyCode"], doc["code"], doc["type"])
        with self._lock:
            existing = self._docs.get(key)
            if existing is None:
                doc["id"] = next(self._ids)
                doc["version"] = 1
            else:
                if existing["locked"]:
                    raise _locked(doc["code"])
                if not adjust and existing["status"] == "Committed":
                    raise AvaTaxFault(
                        400,
                        "TransactionAlreadyExists",
                        f"A committed transaction with code '{doc['code']}' already exists in "
                        f"company '{doc['companyCode']}'.",
                        ref="code",
                        description="Use CreateOrAdjustTransaction (or AdjustTransaction) to "
                        "change a committed transaction.",
                    )
                if existing["status"] == "Cancelled":
                    raise fault(
                        "InvalidDocumentStatus",
                        f"Transaction '{doc['code']}' has been voided and cannot be adjusted.",
                        ref="code",
                    )
                doc["id"] = existing["id"]
                doc["version"] = existing["version"] + 1
                if adjust:
                    doc["adjustmentReason"] = "Other"
                    doc["adjustmentDescription"] = "Adjusted by CreateOrAdjustTransaction"
            _set_ids(doc)
            self._docs[key] = doc
            return copy.deepcopy(doc), True

    def void(self, company: str, code: str, doc_type: str | None, body: Any) -> dict[str, Any]:
        """VoidTransaction with code DocVoided, or DocDeleted (an uncommitted document is then
        removed, a committed one cancelled)."""
        self._company_id(company)
        if not isinstance(body, dict) or "code" not in body:
            raise fault("ModelRequiredException", "The void model is required.", ref="code")
        if body["code"] not in ("DocVoided", "DocDeleted"):
            raise fault(
                "InvalidEnumValue",
                f"Void code {body['code']!r} is not supported here: use DocVoided or DocDeleted.",
                ref="code",
            )
        with self._lock:
            doc = self._find(company, code, doc_type)
            if doc["locked"]:
                raise _locked(code)
            if doc["status"] == "Cancelled":
                raise fault(
                    "TransactionAlreadyCancelled",
                    f"Transaction '{code}' has already been voided.",
                    ref="code",
                )
            if body["code"] == "DocDeleted" and doc["status"] != "Committed":
                del self._docs[(company, doc["code"], doc["type"])]
            doc["status"] = "Cancelled"
            doc["modifiedDate"] = self._now()
            return copy.deepcopy(doc)

    def get(self, company: str, code: str, doc_type: str | None) -> dict[str, Any]:
        """GetTransactionByCode."""
        self._company_id(company)
        with self._lock:
            return copy.deepcopy(self._find(company, code, doc_type))

    # -- test helpers ---------------------------------------------------------------------

    def lock(self, company: str, code: str, doc_type: str | None = None) -> None:
        """Mark a document as reported to a tax authority: it can no longer change."""
        with self._lock:
            self._find(company, code, doc_type)["locked"] = True

    def documents(self, company: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded documents, oldest first."""
        with self._lock:
            docs = [
                d for d in self._docs.values() if company is None or d["companyCode"] == company
            ]
            return copy.deepcopy(sorted(docs, key=lambda d: d["id"]))

    def clear(self) -> None:
        """Forget every document."""
        with self._lock:
            self._docs.clear()

    # -- internals ------------------------------------------------------------------------

    def _find(self, company: str, code: str, doc_type: str | None) -> dict[str, Any]:
        wanted = doc_type or "SalesInvoice"
        doc = self._docs.get((company, code, wanted))
        if doc is None:
            raise AvaTaxFault(
                404,
                "EntityNotFoundError",
                f"Transaction '{code}' of type {wanted} was not found in company '{company}'.",
                ref="transactionCode",
            )
        return doc

    def _company_id(self, company: Any) -> int:
        if not isinstance(company, str) or not company:
            raise fault("ValueRequiredError", "Field 'companyCode' is required.", ref="companyCode")
        if company not in COMPANIES:
            raise AvaTaxFault(
                404,
                "EntityNotFoundError",
                f"Company '{company}' was not found in this account.",
                ref="companyCode",
            )
        return COMPANIES[company]

    def _compute(self, model: Mapping[str, Any]) -> dict[str, Any]:
        check_lengths(model)
        for name in ("lines", "date", "customerCode"):
            if model.get(name) in (None, "", []):
                raise fault("ValueRequiredError", f"Field '{name}' is required.", ref=name)
        company = model.get("companyCode")
        company_id = self._company_id(company)
        doc_type = _text(model, "type", "SalesOrder")
        if doc_type not in _RECORDED_TYPES + _ESTIMATE_TYPES:
            raise fault(
                "InvalidDocumentType",
                f"Document type '{doc_type}' is not supported here.",
                ref="type",
            )
        code = _text(model, "code", "")
        if doc_type in _RECORDED_TYPES and not code:
            raise fault(
                "ValueRequiredError",
                "Field 'code' is required to record a transaction.",
                ref="code",
            )
        doc_date = _date(model["date"], "date")
        currency = _text(model, "currencyCode", "USD")
        if currency not in list_currencies():
            raise fault(
                "InvalidParameterValue", f"Currency '{currency}' is not valid.", ref="currencyCode"
            )
        places = Decimal(1).scaleb(-int(get_currency_precision(currency)))
        addresses = model.get("addresses") or {}
        location = addresses.get("singleLocation") or addresses.get("shipTo")
        juris = jurisdiction(location)
        exemption = _text(model, "exemptionNo", "")
        exempt = bool(exemption or model.get("customerUsageType") or model.get("entityUseCode"))

        override = model.get("taxOverride") or {}
        override_type = _text(override, "type", "None")
        tax_date = doc_date
        if override_type == "TaxDate":
            tax_date = _date(override.get("taxDate"), "taxOverride.taxDate")
        elif override_type not in ("None", "TaxAmount"):
            raise fault(
                "InvalidEnumValue",
                f"Tax override type '{override_type}' is not supported here.",
                ref="taxOverride.type",
            )

        if not isinstance(model["lines"], list):
            raise fault("ModelStateInvalid", "Field 'lines' must be a list.", ref="lines")
        lines: list[dict[str, Any]] = []
        seen_numbers: set[str] = set()
        for index, raw in enumerate(model["lines"], start=1):
            where = f"lines[{index - 1}]"
            if not isinstance(raw, dict):
                raise fault("ModelStateInvalid", f"{where} must be an object.", ref=where)
            number = str(raw.get("number") or index)
            if number in seen_numbers:
                raise fault(
                    "RepeatedLinesInDocument",
                    f"Line number {number} appears twice.",
                    ref=f"{where}.number",
                )
            seen_numbers.add(number)
            amount = _number(raw.get("amount"), f"{where}.amount", required=True)
            quantity = _number(raw.get("quantity", 1), f"{where}.quantity")
            if amount < _ZERO and doc_type == "SalesInvoice" and override_type == "TaxDate":
                raise fault(
                    "TaxDateOverrideAndNegativeLineAmount",
                    "A tax date override is not allowed with a negative line amount "
                    "on a sales document.",
                    ref=f"{where}.amount",
                )
            line_exemption = _text(raw, "exemptionCode", "")
            line_exempt = exempt or bool(line_exemption)
            tax_included = raw.get("taxIncluded", False)
            if not isinstance(tax_included, bool):
                raise fault(
                    "ModelStateInvalid",
                    f"Field '{where}.taxIncluded' must be a boolean.",
                    ref=where,
                )
            if line_exempt:
                calculated = _ZERO
            elif tax_included:
                # The amount already holds the tax: back it out, as AvaTax does.
                calculated = _round(amount * juris.rate / (1 + juris.rate), places)
                amount -= calculated
            else:
                calculated = _round(amount * juris.rate, places)
            line = {
                "lineNumber": number,
                "itemCode": _text(raw, "itemCode", ""),
                "taxCode": _text(raw, "taxCode", "P0000000"),
                "description": _text(raw, "description", ""),
                "quantity": quantity,
                "lineAmount": amount,
                "discountAmount": _ZERO,
                "exemptAmount": amount if line_exempt else _ZERO,
                "exemptNo": line_exemption or exemption,
                "exemptCertId": 0,
                "isItemTaxable": not line_exempt,
                "taxableAmount": _ZERO if line_exempt else amount,
                "taxCalculated": calculated,
                "tax": calculated,
                "taxDate": tax_date,
                "reportingDate": doc_date,
                "taxOverrideType": "None",
                "taxOverrideAmount": _ZERO,
                "sourcing": "Destination",
                "taxIncluded": tax_included,
            }
            line_override = raw.get("taxOverride") or {}
            line_override_type = _text(line_override, "type", "None")
            if line_override_type == "TaxAmount":
                line["tax"] = _number(
                    line_override.get("taxAmount"), f"{where}.taxOverride.taxAmount", required=True
                )
                line["taxOverrideType"] = "TaxAmount"
                line["taxOverrideAmount"] = line["tax"]
                line["taxOverrideReason"] = _text(line_override, "reason", "")
            elif line_override_type != "None":
                raise fault(
                    "InvalidEnumValue",
                    f"Line tax override type '{line_override_type}' is not supported here.",
                    ref=f"{where}.taxOverride.type",
                )
            lines.append(line)

        if override_type == "TaxAmount":
            wanted = _number(override.get("taxAmount"), "taxOverride.taxAmount", required=True)
            _spread(lines, wanted, places)
            for line in lines:
                line["taxOverrideType"] = "TaxAmount"
                line["taxOverrideAmount"] = line["tax"]
        for line in lines:
            line["details"] = [_detail(juris, line)]

        total_tax = sum((line["tax"] for line in lines), _ZERO)
        total_calc = sum((line["taxCalculated"] for line in lines), _ZERO)
        doc: dict[str, Any] = {
            "id": 0,
            "code": code,
            "companyId": company_id,
            "companyCode": company,
            "date": doc_date,
            "taxDate": tax_date,
            "status": "Committed" if model.get("commit") is True else "Saved",
            "type": doc_type,
            "currencyCode": currency,
            "customerCode": str(model["customerCode"]),
            "customerVendorCode": str(model["customerCode"]),
            "exemptNo": exemption,
            "referenceCode": _text(model, "referenceCode", ""),
            "reconciled": False,
            "locked": False,
            "version": 1,
            "adjustmentReason": "NotAdjusted",
            "adjustmentDescription": "",
            "taxOverrideType": override_type,
            "taxOverrideAmount": (
                _number(override.get("taxAmount"), "taxOverride.taxAmount")
                if override_type == "TaxAmount"
                else _ZERO
            ),
            "taxOverrideReason": _text(override, "reason", ""),
            "totalAmount": sum((line["lineAmount"] for line in lines), _ZERO),
            "totalExempt": sum((line["exemptAmount"] for line in lines), _ZERO),
            "totalDiscount": _ZERO,
            "totalTax": total_tax,
            "totalTaxable": sum((line["taxableAmount"] for line in lines), _ZERO),
            "totalTaxCalculated": total_calc,
            "country": juris.country,
            "region": juris.region,
            "modifiedDate": self._now(),
            "addresses": _addresses(addresses),
            "lines": lines,
            "summary": [_summary(juris, lines)],
        }
        return doc


def _addresses(addresses: Mapping[str, Any]) -> list[dict[str, Any]]:
    """TransactionAddressModels of the document-level addresses given."""
    found = []
    for index, (kind, address) in enumerate(addresses.items(), start=1):
        if not isinstance(address, dict):
            continue
        entry: dict[str, Any] = {"id": index, "boundaryLevel": "Address", "addressType": kind}
        for name in ("line1", "line2", "line3", "city", "region", "postalCode", "country"):
            if address.get(name) is not None:
                entry[name] = address[name]
        found.append(entry)
    return found


def _set_ids(doc: dict[str, Any]) -> None:
    for index, line in enumerate(doc["lines"], start=1):
        line["id"] = doc["id"] * 1000 + index
        line["transactionId"] = doc["id"]
        for detail in line["details"]:
            detail["id"] = line["id"] * 10 + 1
            detail["transactionLineId"] = line["id"]
            detail["transactionId"] = doc["id"]


def _locked(code: str) -> AvaTaxFault:
    return fault(
        "CannotModifyLockedTransaction",
        f"Transaction '{code}' has been reported to a tax authority and is locked; "
        "it cannot be adjusted or voided.",
        ref="code",
    )


def _spread(lines: list[dict[str, Any]], wanted: Decimal, places: Decimal) -> None:
    """Distribute a document-level tax amount over the lines like AvaTax: pro rata to the tax
    each line would carry (or to its amount when nothing is taxable), remainder on the last."""
    weights = [line["taxCalculated"] for line in lines]
    if sum(weights, _ZERO) == _ZERO:
        weights = [line["lineAmount"] for line in lines]
    total_weight = sum(weights, _ZERO)
    given = _ZERO
    for index, (line, weight) in enumerate(zip(lines, weights, strict=True)):
        if index == len(lines) - 1:
            share = wanted - given
        elif total_weight == _ZERO:
            share = _ZERO
        else:
            share = _round(wanted * weight / total_weight, places)
        line["tax"] = share
        given += share


def _detail(juris: Jurisdiction, line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "country": juris.country,
        "region": juris.region,
        "jurisCode": juris.juris_code,
        "jurisName": juris.juris_name,
        "jurisType": "STA" if juris.juris_type == "State" else "CNT",
        "jurisdictionType": juris.juris_type,
        "taxType": juris.tax_type,
        "taxName": juris.tax_name,
        "rate": juris.rate,
        "taxableAmount": line["taxableAmount"],
        "exemptAmount": line["exemptAmount"],
        "nonTaxableAmount": _ZERO,
        "tax": line["tax"],
        "taxCalculated": line["taxCalculated"],
        "sourcing": "Destination",
    }


def _summary(juris: Jurisdiction, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "country": juris.country,
        "region": juris.region,
        "jurisType": juris.juris_type,
        "jurisCode": juris.juris_code,
        "jurisName": juris.juris_name,
        "taxType": juris.tax_type,
        "taxName": juris.tax_name,
        "rateType": "General",
        "rate": juris.rate,
        "taxable": sum((line["taxableAmount"] for line in lines), _ZERO),
        "tax": sum((line["tax"] for line in lines), _ZERO),
        "taxCalculated": sum((line["taxCalculated"] for line in lines), _ZERO),
        "nonTaxable": _ZERO,
        "exemption": sum((line["exemptAmount"] for line in lines), _ZERO),
    }


def _text(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise fault("ModelStateInvalid", f"Field '{name}' must be a string.", ref=name)
    return value


def _number(value: Any, where: str, *, required: bool = False) -> Decimal:
    if value is None:
        if required:
            raise fault("ValueRequiredError", f"Field '{where}' is required.", ref=where)
        return _ZERO
    # The API declares numbers; a quoted amount or a boolean is a client bug worth surfacing.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise fault(
            "InvalidDecimalValue",
            f"Field '{where}' must be a number, got {type(value).__name__}.",
            ref=where,
        )
    return Decimal(value)


def _date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise fault(
            "DateFormatError", f"Field '{where}' must be a date (yyyy-MM-dd).", ref=where
        ) from None


def _round(amount: Decimal, places: Decimal) -> Decimal:
    return amount.quantize(places, rounding=ROUND_HALF_UP)
