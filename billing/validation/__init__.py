"""Billing-level validation: every invariant of the billing contract, checked in one place.

finsync does not repair billing's data. A record that breaks the contract (docs/billing-contract.md)
is *rejected*: the sync quarantines it on every target alike and the workbook leaves it out of its
totals, listing it with the reason. Two layers:

- in-record checks (``invoice_problems`` and friends): what one record says about itself (its
  lines add up, amounts are rounded to its currency, dates are ordered). The target mappings call
  them too, so a mapping handed a bad record on its own still refuses it;
- ``validate_billing``: one streaming pass over billing that adds what needs other records (the
  customer, product, invoice, payment or credit note a record refers to; what an invoice still
  owes after earlier credit notes; what a payment or credit note has left after earlier refunds;
  revenue schedules against their lines; unique numbers). A record that depends on a rejected
  record is rejected too, naming it.

Every ``Problem`` names the field, says what is wrong with amounts at the currency's scale
(``12.00``, not ``12.000000``), and says what to do in billing. Pure: no I/O of its own; the
records come from a ``BillingSource`` (``sync.extract.BillingReader``).
"""

from __future__ import annotations

from collections.abc import Collection

from billing.validation.closure import (
    Pass,
    check_credit_notes,
    check_customers,
    check_invoices,
    check_payments,
    check_products,
    check_refunds,
)
from billing.validation.in_record import (
    CREDIT_NOTE_STATUSES,
    INVOICE_STATUSES,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    REVENUE_PATTERNS,
    SCHEDULE_STATUSES,
    amount_problems,
    credit_note_problems,
    currency_problems,
    customer_problems,
    invoice_problems,
    payment_problems,
    product_problems,
    refund_problems,
    revenue_entry_problems,
    text_problems,
)
from billing.validation.schedules import check_revenue
from billing.validation.verdicts import REJECTION_KINDS, BillingSource, Rejection, Verdicts
from billing.validation.wording import money_text

__all__ = [
    "CREDIT_NOTE_STATUSES",
    "INVOICE_STATUSES",
    "PAYMENT_METHODS",
    "PAYMENT_STATUSES",
    "REJECTION_KINDS",
    "REVENUE_PATTERNS",
    "SCHEDULE_STATUSES",
    "BillingSource",
    "Rejection",
    "Verdicts",
    "amount_problems",
    "credit_note_problems",
    "currency_problems",
    "customer_problems",
    "invoice_problems",
    "money_text",
    "payment_problems",
    "product_problems",
    "refund_problems",
    "revenue_entry_problems",
    "text_problems",
    "validate_billing",
]


def validate_billing(source: BillingSource, *, entities: Collection[str] | None = None) -> Verdicts:
    """Check every billing record against the contract, in one streaming pass.

    ``entities`` are the billing entity codes finsync knows (the mapping file's [entities]);
    None accepts any entity. Returns the rejected records with their problems.
    """
    state = Pass(entities=entities)
    check_customers(state, source.all_records("customer"))
    check_products(state, source.products())
    check_invoices(state, source.all_records("invoice"))
    check_credit_notes(state, source.all_records("credit_note"))
    check_payments(state, source.all_records("payment"))
    check_refunds(state, source.all_records("refund"))
    check_revenue(state, source.all_records("revenue"))
    return Verdicts(state.rejections)
