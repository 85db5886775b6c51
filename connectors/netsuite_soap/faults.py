"""NetSuite's SOAP faults and write statuses, classified into finsync's error taxonomy in one
table: what is retried (concurrency and request limits, outages), what is an authentication
failure, what fails the record for good."""

from __future__ import annotations

from lxml import etree

from connectors.netsuite_soap.replies import child, children, local_name
from connectors.netsuite_soap.settings import SYSTEM
from core.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)

#: Fault and status codes that mean "try again later" (concurrency limits, outages).
RETRYABLE_CODES = frozenset(
    {
        "WS_REQUEST_BLOCKED",
        "WS_CONCUR_SESSION_DISALLWD",
        "EXCEEDED_CONCURRENT_REQUEST_LIMIT",
        "EXCEEDED_REQUEST_LIMIT",
        "UNEXPECTED_ERROR",
        "SSS_REQUEST_LIMIT_EXCEEDED",
        "RCRD_HAS_BEEN_CHANGED",
        "WS_EXCEEDED_CONCUR_USERS_ALLOWED",
    }
)
#: Fault elements (detail children) that mean "try again later".
RETRYABLE_FAULTS = frozenset(
    {
        "exceededConcurrentRequestLimitFault",
        "exceededRequestLimitFault",
        "unexpectedErrorFault",
    }
)
#: Fault elements that mean the credentials or signature were refused.
AUTH_FAULTS = frozenset({"invalidCredentialsFault", "invalidAccountFault", "invalidSessionFault"})
#: Status codes of records that do not exist (getList).
NOT_FOUND_CODES = frozenset({"RCRD_DSNT_EXIST", "INVALID_KEY_OR_REF"})


def classify_fault(
    operation: str,
    fault_name: str | None,
    code: str | None,
    message: str,
    http_status: int | None = None,
) -> ConnectorError:
    """The error for a SOAP fault (``fault_name`` is the detail element, ``code`` its code).

    The code decides when there is one (an ``unexpectedErrorFault`` may carry USER_ERROR, which
    will fail again); the fault element decides otherwise; a bare 5xx fault is retryable.
    """
    code_text = code or fault_name or "SOAP_FAULT"
    if (code and code.startswith("INVALID_LOGIN")) or code == "INVALID_SIGNATURE":
        return AuthError(SYSTEM, operation, message, code=code_text)
    if fault_name in AUTH_FAULTS:
        return AuthError(SYSTEM, operation, message, code=code_text)
    limited = fault_name in ("exceededConcurrentRequestLimitFault", "exceededRequestLimitFault")
    if code in RETRYABLE_CODES or (code is None and fault_name in RETRYABLE_FAULTS):
        cls = RateLimitedError if limited else RetryableError
        return cls(SYSTEM, operation, message, code=code_text)
    if code is None and limited:
        return RateLimitedError(SYSTEM, operation, message, code=code_text)
    if code is None and fault_name is None and (http_status or 500) >= 500:
        return RetryableError(SYSTEM, operation, message, code=code_text)
    return PermanentError(SYSTEM, operation, message, code=code_text)


def fault_error(operation: str, fault: etree._Element, http_status: int) -> ConnectorError:
    """The classified error of a ``soapenv:Fault`` element (its detail's fault and code)."""
    faultstring_el = child(fault, "faultstring")
    faultstring = (faultstring_el.text or "") if faultstring_el is not None else ""
    detail = child(fault, "detail")
    fault_el = (
        next((c for c in detail if isinstance(c.tag, str)), None) if detail is not None else None
    )
    name = local_name(fault_el) if fault_el is not None else None
    if name == "hostname":
        fault_el, name = None, None
    code_el = child(fault_el, "code")
    message_el = child(fault_el, "message")
    message = message_el.text if message_el is not None and message_el.text else faultstring
    return classify_fault(
        operation,
        name,
        code_el.text if code_el is not None else None,
        message.strip() or "SOAP fault",
        http_status,
    )


def status_error(operation: str, status: etree._Element | None) -> ConnectorError | None:
    """None when a ``status`` says isSuccess, else the classified error of its first detail."""
    if status is not None and status.get("isSuccess") == "true":
        return None
    details = children(status, "statusDetail")
    errors = [d for d in details if d.get("type", "ERROR") == "ERROR"] or details
    code_el = child(errors[0], "code") if errors else None
    code = (code_el.text or "") if code_el is not None else None
    messages = (child(d, "message") for d in errors)
    message = (
        "; ".join((m.text or "").strip() for m in messages if m is not None)
        or "NetSuite reported a failure without details"
    )
    if code in RETRYABLE_CODES:
        return RetryableError(SYSTEM, operation, message, code=code)
    if code and code.startswith("INVALID_LOGIN"):
        return AuthError(SYSTEM, operation, message, code=code)
    return PermanentError(SYSTEM, operation, message, code=code or "ERROR")
