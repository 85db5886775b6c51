"""The record types the sandbox models, field by field, in NetSuite's 2023_2 schema order.

One table drives the SOAP parser and writer, the REST parser and writer, and the normalized
form: a record is a dict of ``externalId``, ``internalId``, body fields and sublists (lists of
line dicts). References are stored as the internal id they resolve to; amounts as ``Decimal``;
dates as ``date``; an address (the customer's ``addressbookAddress``) as a dict of its fields with
the country as an ISO code. Fields marked ``computed`` are worked out by the sandbox and refused
on write.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_CORE = "urn:core_2023_2.platform.webservices.netsuite.com"
NS_CORE_TYPES = "urn:types.core_2023_2.platform.webservices.netsuite.com"
NS_MESSAGES = "urn:messages_2023_2.platform.webservices.netsuite.com"
NS_COMMON = "urn:common_2023_2.platform.webservices.netsuite.com"
NS_FAULTS = "urn:faults_2023_2.platform.webservices.netsuite.com"
NS_FAULT_TYPES = "urn:types.faults_2023_2.platform.webservices.netsuite.com"
NS_SALES = "urn:sales_2023_2.transactions.webservices.netsuite.com"
NS_CUSTOMERS = "urn:customers_2023_2.transactions.webservices.netsuite.com"
NS_GENERAL = "urn:general_2023_2.transactions.webservices.netsuite.com"
NS_RELATIONSHIPS = "urn:relationships_2023_2.lists.webservices.netsuite.com"
NS_ACCOUNTING = "urn:accounting_2023_2.lists.webservices.netsuite.com"

#: The most characters NetSuite accepts in the string fields the sandbox models, by field name
#: (the same on every record type here). The 2023_2 XSD declares them plain ``xsd:string``;
#: the limits are NetSuite's, from its field reference and the ``EXCEEDED_MAX_FIELD_LENGTH``
#: answers it gives ("The field addr1 contained more than the maximum number ( 150 ) of
#: characters allowed."). ``externalId`` is an attribute, checked on every write.
FIELD_LENGTHS: dict[str, int] = {
    "externalId": 255,
    "entityId": 83,
    "companyName": 83,
    "firstName": 32,
    "lastName": 32,
    "phone": 32,
    "email": 254,
    "tranId": 45,
    "memo": 999,
    "description": 4000,
    "label": 150,
    "attention": 150,
    "addressee": 150,
    "addrPhone": 32,
    "addr1": 150,
    "addr2": 150,
    "addr3": 150,
    "city": 50,
    "state": 30,
    "zip": 36,
}

#: What a reference field points to: a record type the sandbox stores, or reference data.
STORED_TARGETS = frozenset({"customer", "invoice"})
#: The ``doc`` target of a customer refund's apply lines: a payment or a credit memo.
REFUNDED = "refunded"
#: The record types a customer refund may pay back.
REFUNDED_TYPES = frozenset({"customerPayment", "creditMemo"})


@dataclass(frozen=True)
class Field:
    """One field: ``kind`` is string, bool, date, amount (Decimal), decimal, ref, doc, address
    or country.

    ``ref`` fields point to ``target`` (a stored record type or a kind of reference data);
    ``doc`` is a transaction given by internal id as a number (the apply sublists' xsd:long):
    an invoice, or for a customer refund (target ``REFUNDED``) a payment or credit memo;
    ``address`` is the Address subrecord (``ADDRESS_FIELDS``); ``country`` an ISO code (SOAP
    sends the Country enumeration). ``label`` is NetSuite's field label, used in messages;
    ``rest_name`` the REST spelling when it differs (``addressBookAddress``); ``max_length``
    the most characters NetSuite stores in a string field (``FIELD_LENGTHS``).
    """

    name: str
    kind: str
    label: str
    target: str | None = None
    computed: bool = False
    rest_name: str | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "string" and self.max_length is None:
            object.__setattr__(self, "max_length", FIELD_LENGTHS.get(self.name))

    @property
    def json_name(self) -> str:
        """The field's name in the REST record API."""
        return self.rest_name or self.name


@dataclass(frozen=True)
class Sublist:
    """A sublist: SOAP ``<name><line_element>..`` and REST ``{rest_name: {"items": [..]}}``."""

    name: str
    line_element: str
    rest_name: str
    list_type: str
    line_type: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field | None:
        """The line field called ``name``, or None."""
        return next((f for f in self.fields if f.name == name), None)

    def json_field(self, name: str) -> Field | None:
        """The line field called ``name`` in the REST record API, or None."""
        return next((f for f in self.fields if f.json_name == name), None)


@dataclass(frozen=True)
class RecordSpec:
    """A record type: REST/RecordRef name, XSD type name and namespace, members in order."""

    type: str
    xml_type: str
    namespace: str
    members: tuple[Field | Sublist, ...]
    writable: bool = True

    def member(self, name: str) -> Field | Sublist | None:
        """The field or sublist called ``name``, or None."""
        return next((m for m in self.members if m.name == name), None)

    @property
    def sublists(self) -> tuple[Sublist, ...]:
        """The sublists of this record type."""
        return tuple(m for m in self.members if isinstance(m, Sublist))


def _ref(name: str, label: str, target: str | None = None) -> Field:
    return Field(name, "ref", label, target or name)


_DEPT = _ref("department", "Department")
_CLASS = _ref("class", "Class")
_LOCATION = _ref("location", "Location")
_PERIOD = _ref("postingPeriod", "Posting Period", "accountingPeriod")

#: The Address subrecord (platformCommon:Address), in 2023_2 element order.
ADDRESS_FIELDS = (
    Field("country", "country", "Country"),
    Field("attention", "string", "Attention"),
    Field("addressee", "string", "Addressee"),
    Field("addrPhone", "string", "Phone"),
    Field("addr1", "string", "Address 1"),
    Field("addr2", "string", "Address 2"),
    Field("addr3", "string", "Address 3"),
    Field("city", "string", "City"),
    Field("state", "string", "State"),
    Field("zip", "string", "Zip"),
)
ADDRESS_BY_NAME = {f.name: f for f in ADDRESS_FIELDS}

_INVOICE_LINE = (
    _ref("item", "Item"),
    Field("description", "string", "Description"),
    Field("amount", "amount", "Amount"),
    Field("quantity", "decimal", "Quantity"),
    Field("rate", "decimal", "Rate"),
    _DEPT,
    _CLASS,
    _LOCATION,
    Field("revRecStartDate", "date", "Rev. Rec. Start Date"),
    Field("revRecEndDate", "date", "Rev. Rec. End Date"),
    Field("tax1Amt", "amount", "Tax Amt"),
    _ref("taxCode", "Tax Code"),
    Field("taxRate1", "decimal", "Tax Rate"),
)
_CREDIT_LINE = (
    _ref("item", "Item"),
    Field("quantity", "decimal", "Quantity"),
    Field("description", "string", "Description"),
    Field("rate", "decimal", "Rate"),
    Field("amount", "amount", "Amount"),
    _ref("taxCode", "Tax Code"),
    Field("taxRate1", "decimal", "Tax Rate"),
    Field("tax1Amt", "amount", "Tax Amt"),
    _DEPT,
    _CLASS,
    _LOCATION,
    Field("revRecStartDate", "date", "Rev. Rec. Start Date"),
    Field("revRecEndDate", "date", "Rev. Rec. End Date"),
)
_APPLY = (
    Field("apply", "bool", "Apply"),
    Field("doc", "doc", "Doc", "invoice"),
    Field("amount", "amount", "Payment"),
)

INVOICE = RecordSpec(
    "invoice",
    "Invoice",
    NS_SALES,
    (
        _ref("entity", "Customer", "customer"),
        Field("tranDate", "date", "Date"),
        Field("tranId", "string", "Invoice #"),
        _PERIOD,
        _DEPT,
        _CLASS,
        _LOCATION,
        _ref("subsidiary", "Subsidiary"),
        _ref("currency", "Currency"),
        Field("dueDate", "date", "Due Date"),
        Field("memo", "string", "Memo"),
        Field("amountRemaining", "amount", "Amount Remaining", computed=True),
        Field("total", "amount", "Total", computed=True),
        Sublist("itemList", "item", "item", "InvoiceItemList", "InvoiceItem", _INVOICE_LINE),
    ),
)
CREDIT_MEMO = RecordSpec(
    "creditMemo",
    "CreditMemo",
    NS_CUSTOMERS,
    (
        _ref("currency", "Currency"),
        _ref("entity", "Customer", "customer"),
        Field("tranDate", "date", "Date"),
        Field("tranId", "string", "Credit #"),
        _ref("createdFrom", "Created From", "invoice"),
        _PERIOD,
        _DEPT,
        _CLASS,
        _LOCATION,
        _ref("subsidiary", "Subsidiary"),
        Field("memo", "string", "Memo"),
        Field("autoApply", "bool", "Auto Apply"),
        Field("applied", "amount", "Applied", computed=True),
        Field("total", "amount", "Total", computed=True),
        Sublist("itemList", "item", "item", "CreditMemoItemList", "CreditMemoItem", _CREDIT_LINE),
        Sublist("applyList", "apply", "apply", "CreditMemoApplyList", "CreditMemoApply", _APPLY),
    ),
)
CUSTOMER_PAYMENT = RecordSpec(
    "customerPayment",
    "CustomerPayment",
    NS_CUSTOMERS,
    (
        _ref("customer", "Customer", "customer"),
        _ref("currency", "Currency"),
        Field("payment", "amount", "Payment Amount"),
        Field("autoApply", "bool", "Auto Apply"),
        Field("tranDate", "date", "Date"),
        Field("tranId", "string", "Payment #"),
        _PERIOD,
        Field("memo", "string", "Memo"),
        Field("undepFunds", "bool", "Undep. Funds"),
        _ref("account", "Account"),
        _ref("subsidiary", "Subsidiary"),
        Field("applied", "amount", "Applied", computed=True),
        Field("unapplied", "amount", "Unapplied", computed=True),
        _CLASS,
        _DEPT,
        _LOCATION,
        Sublist(
            "applyList",
            "apply",
            "apply",
            "CustomerPaymentApplyList",
            "CustomerPaymentApply",
            _APPLY,
        ),
    ),
)
CUSTOMER_REFUND = RecordSpec(
    "customerRefund",
    "CustomerRefund",
    NS_CUSTOMERS,
    (
        _ref("customer", "Customer", "customer"),
        Field("total", "amount", "Amount", computed=True),
        _ref("currency", "Currency"),
        Field("tranDate", "date", "Date"),
        _PERIOD,
        Field("memo", "string", "Memo"),
        Field("tranId", "string", "Refund #"),
        _ref("subsidiary", "Subsidiary"),
        _DEPT,
        _CLASS,
        _LOCATION,
        Sublist(
            "applyList",
            "apply",
            "apply",
            "CustomerRefundApplyList",
            "CustomerRefundApply",
            (
                Field("apply", "bool", "Apply"),
                Field("doc", "doc", "Doc", REFUNDED),
                Field("amount", "amount", "Payment"),
            ),
        ),
    ),
)
JOURNAL_ENTRY = RecordSpec(
    "journalEntry",
    "JournalEntry",
    NS_GENERAL,
    (
        _PERIOD,
        Field("tranDate", "date", "Date"),
        _ref("currency", "Currency"),
        Field("tranId", "string", "Entry No."),
        _DEPT,
        _CLASS,
        _LOCATION,
        _ref("subsidiary", "Subsidiary"),
        Field("memo", "string", "Memo"),
        Sublist(
            "lineList",
            "line",
            "line",
            "JournalEntryLineList",
            "JournalEntryLine",
            (
                _ref("account", "Account"),
                Field("debit", "amount", "Debit"),
                Field("credit", "amount", "Credit"),
                Field("memo", "string", "Memo"),
                _ref("entity", "Name", "customer"),
                _DEPT,
                _CLASS,
                _LOCATION,
            ),
        ),
    ),
)
CUSTOMER = RecordSpec(
    "customer",
    "Customer",
    NS_RELATIONSHIPS,
    (
        Field("entityId", "string", "Customer ID"),
        Field("isPerson", "bool", "Type"),
        Field("firstName", "string", "First Name"),
        Field("lastName", "string", "Last Name"),
        Field("companyName", "string", "Company Name"),
        Field("phone", "string", "Phone"),
        Field("email", "string", "Email"),
        Field("isInactive", "bool", "Inactive"),
        _ref("subsidiary", "Primary Subsidiary"),
        _ref("currency", "Currency"),
        Sublist(
            "addressbookList",
            "addressbook",
            "addressBook",
            "CustomerAddressbookList",
            "CustomerAddressbook",
            (
                Field("defaultShipping", "bool", "Default Shipping"),
                Field("defaultBilling", "bool", "Default Billing"),
                Field("isResidential", "bool", "Residential Address"),
                Field("label", "string", "Label"),
                Field("addressbookAddress", "address", "Address", rest_name="addressBookAddress"),
            ),
        ),
    ),
)
ACCOUNTING_PERIOD = RecordSpec(
    "accountingPeriod",
    "AccountingPeriod",
    NS_ACCOUNTING,
    (
        Field("periodName", "string", "Period Name"),
        Field("startDate", "date", "Start Date"),
        Field("endDate", "date", "End Date"),
        Field("isAdjust", "bool", "Adjustment"),
        Field("isQuarter", "bool", "Quarter"),
        Field("isYear", "bool", "Year"),
        Field("closed", "bool", "Closed"),
        Field("apLocked", "bool", "AP Locked"),
        Field("arLocked", "bool", "AR Locked"),
        Field("allLocked", "bool", "All Locked"),
    ),
    writable=False,
)

SPECS: dict[str, RecordSpec] = {
    s.type: s
    for s in (
        INVOICE,
        CREDIT_MEMO,
        CUSTOMER_PAYMENT,
        CUSTOMER_REFUND,
        JOURNAL_ENTRY,
        CUSTOMER,
        ACCOUNTING_PERIOD,
    )
}
#: XSD type (namespace, name) -> record spec, for ``xsi:type`` on ``<record>``.
BY_XML_TYPE = {(s.namespace, s.xml_type): s for s in SPECS.values()}
#: Transaction search ``type`` values (TransactionSearchBasic) -> record type.
TRANSACTION_SEARCH_TYPES = {
    "_invoice": "invoice",
    "_creditMemo": "creditMemo",
    "_customerPayment": "customerPayment",
    "_customerRefund": "customerRefund",
    "_journal": "journalEntry",
}
TRANSACTION_TYPES = frozenset(TRANSACTION_SEARCH_TYPES.values())
