"""What the AvaTax sandbox refuses, in AvaTax's own error shape: ``AvaTaxFault`` (HTTP status,
error code, message, the ErrorDetail with its number and help link), and the string lengths of
the models it reads, from AvaTax's OpenAPI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: AvaTax's ErrorCodeId numbers of the codes the sandbox answers (error details[].number).
ERROR_NUMBERS: dict[str, int] = {
    "EntityNotFoundError": 4,
    "ValueRequiredError": 5,
    "StringLengthError": 13,
    "DateFormatError": 26,
    "AuthenticationException": 30,
    "ModelRequiredException": 38,
    "JsonFormatError": 47,
    "InvalidDecimalValue": 48,
    "ModelStateInvalid": 70,
    "InvalidCountry": 125,
    "InvalidCountryRegion": 126,
    "InvalidEnumValue": 164,
    "TransactionAlreadyCancelled": 198,
    "MissingAddress": 304,
    "InvalidParameterValue": 306,
    "InvalidAddress": 309,
    "CannotModifyLockedTransaction": 1100,
    "TransactionAlreadyExists": 1303,
    "InvalidDocumentType": 1310,
    "InvalidDocumentStatus": 1314,
    "RepeatedLinesInDocument": 2213,
    "TaxDateOverrideAndNegativeLineAmount": 2214,
}
HELP_LINK = "https://developer.avalara.com/avatax/errors/{code}"

#: maxLength of the string fields of the models the sandbox reads, from the AvaTax OpenAPI
#: (../shared/specs/avatax: CreateTransactionModel, LineItemModel, AddressLocationInfo).
MAX_LENGTHS: dict[str, dict[str, int]] = {
    "transaction": {
        "code": 50,
        "companyCode": 50,
        "salespersonCode": 25,
        "customerCode": 50,
        "customerUsageType": 25,
        "entityUseCode": 25,
        "purchaseOrderNo": 50,
        "exemptionNo": 25,
        "referenceCode": 1024,
        "reportingLocationCode": 50,
        "batchCode": 25,
        "currencyCode": 3,
        "posLaneCode": 50,
        "businessIdentificationNo": 25,
        "description": 2048,
        "email": 50,
    },
    "line": {
        "number": 50,
        "taxCode": 25,
        "customerUsageType": 25,
        "entityUseCode": 25,
        "itemCode": 50,
        "revenueAccount": 50,
        "ref1": 250,
        "ref2": 250,
        "description": 2096,
        "businessIdentificationNo": 25,
        "hsCode": 25,
    },
    "address": {"line1": 50, "line2": 100, "line3": 100, "city": 50, "postalCode": 11},
}


class AvaTaxFault(Exception):
    """A request AvaTax refuses: HTTP ``status``, AvaTax error ``code``, ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str = "IncorrectData",
        ref: str | None = None,
        description: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.ref = ref
        self.description = description

    def body(self) -> dict[str, Any]:
        """The AvaTax ErrorResult for this fault: error code, message and target, and one
        ErrorDetail with the code's number, a description, faultCode, helpLink and severity."""
        detail: dict[str, Any] = {
            "code": self.code,
            "number": ERROR_NUMBERS.get(self.code, 0),
            "message": self.message,
            "description": self.description or self.message,
            "faultCode": "Client" if self.status < 500 else "Server",
            "helpLink": HELP_LINK.format(code=self.code),
            "severity": "Error",
        }
        if self.ref:
            detail["refersTo"] = self.ref
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": self.target,
                "details": [detail],
            }
        }


def fault(code: str, message: str, *, status: int = 400, ref: str | None = None) -> AvaTaxFault:
    """An AvaTaxFault of ``code`` (status 400 unless given), naming the field ``ref``."""
    return AvaTaxFault(status, code, message, ref=ref)


def check_lengths(model: Mapping[str, Any]) -> None:
    """Raise StringLengthError for the first string longer than the OpenAPI's maxLength."""
    places: list[tuple[str, Any, dict[str, int]]] = [("", model, MAX_LENGTHS["transaction"])]
    lines = model.get("lines")
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        places.append((f"lines[{index}].", line, MAX_LENGTHS["line"]))
    for prefix, holder in [("", model)] + [(p, h) for p, h, _ in places[1:]]:
        addresses = holder.get("addresses") if isinstance(holder, dict) else None
        for kind, address in addresses.items() if isinstance(addresses, dict) else []:
            places.append((f"{prefix}addresses.{kind}.", address, MAX_LENGTHS["address"]))
    for prefix, holder, limits in places:
        if not isinstance(holder, dict):
            continue
        for name, limit in limits.items():
            value = holder.get(name)
            if isinstance(value, str) and len(value) > limit:
                where = f"{prefix}{name}"
                raise AvaTaxFault(
                    400,
                    "StringLengthError",
                    f"Field '{where}' has an invalid length.",
                    ref=where,
                    description=f"Field '{where}' must be between 0 and {limit} characters in "
                    f"length; it has {len(value)}.",
                )
