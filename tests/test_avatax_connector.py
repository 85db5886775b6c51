"""AvaTax connector against the AvaTax sandbox over real HTTP on loopback.

What goes over the wire is checked against Avalara's own Swagger definition (v2.json): every
request body against CreateOrAdjustTransactionModel / VoidTransactionModel, every answer
against TransactionModel (or ErrorResult).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from connectors.avatax import AvaTaxConnector, AvaTaxSettings, build_avatax
from connectors.base import Connector
from core.documents import Document
from core.errors import AuthError, ConfigError, OutcomeUnknownError, PermanentError, RetryableError
from finsync.config import Secret, Section, TargetConfig
from mappings import avatax
from sandbox.avatax import AvaTaxSandbox
from tests.avatax_records import credit_note, customer, invoice, line, tables

ACCOUNT = "2000000001"
LICENSE_KEY = "lk-7f3a9c-very-secret"


@pytest.fixture
def sandbox() -> Iterator[AvaTaxSandbox]:
    with AvaTaxSandbox(account_id=ACCOUNT, license_key=LICENSE_KEY) as sb:
        yield sb


class Wire:
    """Every answer the connector received, parsed exactly (numbers as Decimal)."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, int, Any]] = []
        self.clients: list[httpx.Client] = []

    def hook(self, response: httpx.Response) -> None:
        response.read()
        body = (
            json.loads(response.content, parse_float=Decimal)
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        self.responses.append((response.request.url.path, response.status_code, body))


@pytest.fixture
def wire() -> Iterator[Wire]:
    recorder = Wire()
    yield recorder
    for client in recorder.clients:
        client.close()


@pytest.fixture
def sleeps() -> list[float]:
    """Waits the connector asked for (retries, throttle); recorded instead of slept."""
    return []


def connect(
    sandbox: AvaTaxSandbox,
    wire: Wire,
    sleeps: list[float],
    *,
    license_key: str = LICENSE_KEY,
    timeout: float = 10.0,
    attempts: int = 4,
) -> AvaTaxConnector:
    settings = AvaTaxSettings(
        account_id=Secret(ACCOUNT),
        license_key=Secret(license_key),
        base_url=sandbox.url,
        client_name="finsync; 0.1.0; Python; 3.11; test",
        timeout_seconds=timeout,
        retry_attempts=attempts,
    )
    client = httpx.Client(
        base_url=sandbox.url, timeout=httpx.Timeout(timeout), event_hooks={"response": [wire.hook]}
    )
    wire.clients.append(client)
    return AvaTaxConnector(settings, client=client, sleep=sleeps.append)


def invoice_doc(number: str = "INV-2026-0010", iid: int = 10, **kw: Any) -> Document:
    cust = customer(**kw)
    return avatax.map_invoice(invoice(iid, number, cust=cust), cust, tables())


def validator(definitions: dict[str, Any], model: str) -> jsonschema.Draft4Validator:
    """A validator for one model of v2.json, its $refs resolved against the definitions."""
    schema = {"definitions": definitions, "allOf": [{"$ref": f"#/definitions/{model}"}]}
    return jsonschema.Draft4Validator(schema)


# -- the wire matches Avalara's definition ---------------------------------------------------


def test_requests_and_answers_match_avalara_swagger(
    specs_dir: Path, sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    definitions = json.loads((specs_dir / "avatax" / "v2.json").read_text("utf-8"))["definitions"]
    conn = connect(sandbox, wire, sleeps)
    cust, jp = customer(), customer(entity="acme-jp")
    inv = invoice(cust=cust)
    docs = [
        avatax.map_invoice(inv, cust, tables()),
        avatax.map_credit_note(credit_note(inv), cust, inv.issue_date, tables()),
        avatax.map_invoice(
            invoice(
                11,
                "INV-2026-0011",
                cust=jp,
                lines=(line(1, "plat-pro", "1", "29800", "29800", "0.10", "2980", "JP"),),
            ),
            jp,
            tables(),
        ),
        invoice_doc("INV-2026-0012", 12, exempt=True),
    ]
    docs[2] = avatax.map_invoice(
        invoice(
            11,
            "INV-2026-0011",
            cust=customer(entity="acme-jp"),
            lines=(line(1, "plat-pro", "1", "29800", "29800", "0.10", "2980", "JP"),),
        ),
        customer(entity="acme-jp"),
        tables(),
    )
    results = conn.send(docs)
    results += conn.send(
        [
            avatax.map_invoice(
                invoice(12, "INV-2026-0012", cust=customer(exempt=True), status="void"),
                customer(exempt=True),
                tables(),
            )
        ]
    )
    conn.lookup(docs[:1])
    bad = avatax.map_invoice(
        invoice(13, "INV-2026-0013", cust=customer(region="ZZ")), customer(region="ZZ"), tables()
    )
    results += conn.send([bad])

    assert [r.ok for r in results] == [True, True, True, True, True, False]
    requests = {"CreateOrAdjustTransactionModel": 0, "VoidTransactionModel": 0}
    for entry in sandbox.request_log:
        if entry["path"].endswith("/createoradjust"):
            model = "CreateOrAdjustTransactionModel"
        elif entry["path"].endswith("/void"):
            model = "VoidTransactionModel"
        else:
            continue
        validator(definitions, model).validate(entry["body"])
        requests[model] += 1
    assert requests == {"CreateOrAdjustTransactionModel": 5, "VoidTransactionModel": 1}
    answers = 0
    for _path, status, body in wire.responses:
        model = "TransactionModel" if status == 200 else "ErrorResult"
        validator(definitions, model).validate(body)
        answers += 1
    assert answers == 7
    assert all(e["client"] == "finsync; 0.1.0; Python; 3.11; test" for e in sandbox.request_log)


# -- idempotency -----------------------------------------------------------------------------


def test_same_invoice_twice_is_one_document(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    doc = invoice_doc()
    first = conn.send([doc])[0]
    second = conn.send([doc])[0]

    assert first.ok and second.ok
    assert first.internal_id == second.internal_id
    assert (first.created, second.created) == (True, False)
    docs = sandbox.transactions("ACME_US")
    assert len(docs) == 1
    assert docs[0]["code"] == "INV-2026-0010" and docs[0]["status"] == "Committed"
    assert docs[0]["version"] == 2


def test_timeout_after_commit_is_not_resent_before_a_lookup(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps, timeout=0.5, attempts=3)
    sandbox.timeout_after_commit(1)
    doc = invoice_doc()
    with pytest.raises(OutcomeUnknownError):
        conn.send([doc])
    # One request only: a write whose outcome is unknown goes back to the push engine, which
    # looks it up before sending again; the look-up finds the committed transaction.
    assert [e["status"] for e in sandbox.request_log] == ["held"]
    assert conn.retried == 0
    assert conn.lookup([doc]) == {doc.external_id: str(sandbox.transactions()[0]["id"])}
    assert len(sandbox.transactions()) == 1


def test_void_twice_is_harmless(sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]) -> None:
    conn = connect(sandbox, wire, sleeps)
    cust = customer()
    conn.send([avatax.map_invoice(invoice(cust=cust), cust, tables())])
    void = avatax.map_invoice(invoice(cust=cust, status="void"), cust, tables())

    first, second = conn.send([void]) + conn.send([void])

    assert first.ok and second.ok
    assert first.internal_id == second.internal_id
    assert second.details["status"] == "Cancelled"
    assert [d["status"] for d in sandbox.transactions()] == ["Cancelled"]
    assert conn.lookup([void]) == {"INV-2026-0010": first.internal_id}


def test_void_of_a_never_recorded_invoice_is_done(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    cust = customer()
    result = conn.send([avatax.map_invoice(invoice(cust=cust, status="void"), cust, tables())])
    assert result[0].ok and result[0].internal_id is None
    assert sandbox.transactions() == []


def test_credit_note_after_invoice_is_a_return_referring_to_it(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    cust = customer()
    inv = invoice(cust=cust)
    results = conn.send(
        [
            avatax.map_invoice(inv, cust, tables()),
            avatax.map_credit_note(credit_note(inv), cust, inv.issue_date, tables()),
        ]
    )

    assert [r.ok for r in results] == [True, True]
    sale, ret = sandbox.transactions("ACME_US")
    assert (ret["type"], ret["code"], ret["referenceCode"]) == (
        "ReturnInvoice",
        "CN-2026-0050",
        "INV-2026-0010",
    )
    assert ret["taxDate"].isoformat() == "2026-03-05"
    assert ret["totalAmount"] == Decimal("-398.00")
    assert ret["totalTax"] == Decimal("-28.86")
    assert results[1].details["totalTaxCalculated"] == "-28.86"
    assert sale["totalTax"] == Decimal("137.61")


# -- faults ----------------------------------------------------------------------------------


def test_503_burst_is_retried_and_ends_ok(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    sandbox.fail_next(503, times=2)
    result = conn.send([invoice_doc()])[0]

    assert result.ok
    assert [e["status"] for e in sandbox.request_log] == [503, 503, 200]
    assert len(sandbox.transactions()) == 1
    assert len([s for s in sleeps if s >= 0.5]) == 2  # backoff before each retry


def test_429_retry_after_is_honoured(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    sandbox.rate_limit_next(times=2, retry_after=3)
    result = conn.send([invoice_doc()])[0]

    assert result.ok
    assert [e["status"] for e in sandbox.request_log] == [429, 429, 200]
    assert sleeps.count(3.0) == 2


def test_service_down_raises_for_the_batch(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps, attempts=3)
    sandbox.fail_next(503, times=10)
    with pytest.raises(RetryableError) as info:
        conn.send([invoice_doc(), invoice_doc("INV-2026-0011", 11)])
    assert info.value.code == "503"
    assert len(sandbox.request_log) == 3  # bounded attempts, second document never sent
    assert sandbox.transactions() == []


def test_failure_after_a_success_keeps_the_success(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps, attempts=2)
    first = invoice_doc()
    conn.send([first])
    sandbox.reset()
    docs = [
        invoice_doc("INV-2026-0011", 11),
        invoice_doc("INV-2026-0012", 12),
        invoice_doc("INV-2026-0013", 13),
    ]
    # Let the first document through, then fail the rest.
    real_send = conn._send_one
    calls = {"n": 0}

    def send_one(doc: Document) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            sandbox.fail_next(503, times=10)
        return real_send(doc)

    conn._send_one = send_one  # type: ignore[method-assign]
    results = conn.send(docs)
    assert [r.ok for r in results] == [True, False, False]
    assert isinstance(results[1].error, RetryableError)
    assert isinstance(results[2].error, RetryableError)
    assert [d["code"] for d in sandbox.transactions()] == ["INV-2026-0011"]


def test_locked_document_is_a_permanent_error_with_avalaras_message(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    cust = customer()
    conn.send([avatax.map_invoice(invoice(cust=cust), cust, tables())])
    sandbox.lock("ACME_US", "INV-2026-0010")

    adjust = conn.send([avatax.map_invoice(invoice(cust=cust), cust, tables())])[0]
    void = conn.send([avatax.map_invoice(invoice(cust=cust, status="void"), cust, tables())])[0]

    for result in (adjust, void):
        assert not result.ok
        assert isinstance(result.error, PermanentError)
        assert result.error.code == "CannotModifyLockedTransaction"
        assert "reported to a tax authority and is locked" in str(result.error)
    assert [d["status"] for d in sandbox.transactions()] == ["Committed"]


def test_invalid_address_is_refused_with_avalaras_code(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    conn = connect(sandbox, wire, sleeps)
    cust = customer(region="ZZ")
    result = conn.send([avatax.map_invoice(invoice(cust=cust), cust, tables())])[0]
    assert not result.ok
    assert isinstance(result.error, PermanentError)
    assert result.error.code == "InvalidCountryRegion"
    assert "Region 'ZZ'" in result.error.message
    assert sandbox.transactions() == []


def test_bad_license_key_is_an_auth_error_that_never_shows_the_key(
    sandbox: AvaTaxSandbox, wire: Wire, sleeps: list[float]
) -> None:
    wrong = "lk-wrong-key-123456"
    conn = connect(sandbox, wire, sleeps, license_key=wrong)
    with pytest.raises(AuthError) as info:
        conn.send([invoice_doc()])
    assert info.value.code == "AuthenticationException"
    for text in (str(info.value), repr(info.value), repr(conn), repr(conn.settings)):
        assert wrong not in text and LICENSE_KEY not in text
    assert len(sandbox.request_log) == 1  # refused credentials are not retried
    assert conn.ping() is False


# -- settings and factory --------------------------------------------------------------------


def _section(data: dict[str, Any], env: dict[str, str]) -> Section:
    return Section(data, "targets.avatax", env)


def test_settings_from_config_section() -> None:
    env = {"AVA_ACCOUNT": ACCOUNT, "AVA_KEY": LICENSE_KEY}
    settings = AvaTaxSettings.from_section(
        _section(
            {
                "account_id": {"env": "AVA_ACCOUNT"},
                "license_key": {"env": "AVA_KEY"},
                "timeout_seconds": 15,
                "base_url": "https://rest.avatax.com/",
            },
            env,
        )
    )
    assert settings.base_url == "https://rest.avatax.com"
    assert settings.timeout_seconds == 15.0
    assert settings.max_requests_per_second == 10.0
    assert settings.license_key.reveal() == LICENSE_KEY
    assert settings.client_name.startswith("finsync; ")
    assert LICENSE_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"license_key": {"env": "AVA_KEY"}}, "targets.avatax.account_id"),
        (
            {"account_id": {"env": "AVA_ACCOUNT"}, "license_key": {"env": "NOPE"}},
            "targets.avatax.license_key",
        ),
        (
            {
                "account_id": {"env": "AVA_ACCOUNT"},
                "license_key": {"env": "AVA_KEY"},
                "timeout_seconds": 1200,
            },
            "targets.avatax.timeout_seconds",
        ),
        (
            {
                "account_id": {"env": "AVA_ACCOUNT"},
                "license_key": {"env": "AVA_KEY"},
                "timout_seconds": 10,
            },
            "targets.avatax.timout_seconds",
        ),
        (
            {
                "account_id": {"env": "AVA_ACCOUNT"},
                "license_key": {"env": "AVA_KEY"},
                "base_url": "sandbox-rest.avatax.com",
            },
            "targets.avatax.base_url",
        ),
    ],
)
def test_bad_settings_name_the_key(data: dict[str, Any], key: str) -> None:
    env = {"AVA_ACCOUNT": ACCOUNT, "AVA_KEY": LICENSE_KEY}
    with pytest.raises(ConfigError) as info:
        AvaTaxSettings.from_section(_section(data, env))
    assert info.value.key == key


def test_factory_builds_a_working_connector(sandbox: AvaTaxSandbox) -> None:
    env = {"AVA_ACCOUNT": ACCOUNT, "AVA_KEY": LICENSE_KEY}
    section = _section(
        {
            "system": "avatax",
            "account_id": {"env": "AVA_ACCOUNT"},
            "license_key": {"env": "AVA_KEY"},
            "base_url": sandbox.url,
        },
        env,
    )
    section.str("system")  # read by the config loader before the factory runs
    conn = build_avatax(TargetConfig("avatax", "avatax", True, section))
    try:
        assert isinstance(conn, Connector)
        assert conn.ping() is True
        assert conn.send([invoice_doc()])[0].ok
    finally:
        conn.close()


# -- classification unit test (one connector's request/response handling) --------------------


def test_classifier_maps_statuses_and_transport_failures() -> None:
    answers: list[Any] = [
        httpx.Response(500, json={"error": {"code": "ServerConfiguration", "message": "boom"}}),
        httpx.Response(
            400,
            json={
                "error": {
                    "code": "InvalidAddress",
                    "message": "The address is incomplete",
                    "details": [{"description": "no country", "refersTo": "addresses"}],
                }
            },
        ),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    settings = AvaTaxSettings(
        account_id=Secret(ACCOUNT),
        license_key=Secret(LICENSE_KEY),
        base_url="http://avatax.test",
        retry_attempts=1,
    )
    client = httpx.Client(base_url="http://avatax.test", transport=httpx.MockTransport(handler))
    conn = AvaTaxConnector(settings, client=client, sleep=lambda s: None)
    doc = invoice_doc()

    with pytest.raises(RetryableError) as server:
        conn.send([doc])
    assert server.value.code == "ServerConfiguration"
    refused = conn.send([doc])[0].error
    assert isinstance(refused, PermanentError) and refused.code == "InvalidAddress"
    assert "no country" in refused.message and "addresses" in refused.message
    with pytest.raises(OutcomeUnknownError):
        conn.send([doc])
    with pytest.raises(RetryableError) as unreachable:
        conn.send([doc])
    assert not isinstance(unreachable.value, OutcomeUnknownError)
    client.close()
