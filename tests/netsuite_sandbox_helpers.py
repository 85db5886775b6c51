"""Connectors wired to a running NetSuite sandbox (shared by the SOAP and REST sandbox tests)."""

from __future__ import annotations

from connectors.netsuite_rest import NetSuiteRestConnector, NetSuiteRestSettings
from connectors.netsuite_soap import NetSuiteSoapConnector, NetSuiteSoapSettings
from finsync.config import Secret
from mappings import netsuite as ns
from sandbox.netsuite import NetSuiteSandbox, SandboxCredentials
from tests.netsuite_records import credit_note, customer, payment, tables, usd_invoice


def soap(sb: NetSuiteSandbox, *, secret: str | None = None, **kw) -> NetSuiteSoapConnector:
    c = SandboxCredentials.demo()
    s = NetSuiteSoapSettings(
        account=sb.account,
        wsdl=kw.pop("wsdl", sb.wsdl_url),
        endpoint=sb.soap_endpoint,
        consumer_key=Secret(c.consumer_key),
        consumer_secret=Secret(secret or c.consumer_secret.reveal()),
        token_id=Secret(c.token_id),
        token_secret=c.token_secret,
        backoff_seconds=0.01,
        timeout_seconds=kw.pop("timeout_seconds", 10.0),
        **kw,
    )
    return NetSuiteSoapConnector(s)


def rest(sb: NetSuiteSandbox, *, auth: str = "oauth2", **kw) -> NetSuiteRestConnector:
    c = SandboxCredentials.demo()
    common = dict(
        account=sb.account,
        base_url=sb.url,
        backoff_seconds=0.01,
        timeout_seconds=kw.pop("timeout_seconds", 10.0),
        **kw,
    )
    if auth == "oauth2":
        s = NetSuiteRestSettings(
            auth="oauth2",
            client_id=c.client_id,
            algorithm="ES256",
            certificate_id=c.certificate_id,
            private_key=Secret(SandboxCredentials.demo_private_key_pem()),
            **common,
        )
    else:
        s = NetSuiteRestSettings(
            auth="tba",
            consumer_key=Secret(c.consumer_key),
            consumer_secret=c.consumer_secret,
            token_id=Secret(c.token_id),
            token_secret=c.token_secret,
            **common,
        )
    return NetSuiteRestConnector(s)


def chain():
    """Customer, invoice, credit memo and payment documents, in dependency order."""
    t = tables()
    cust = customer()
    inv = usd_invoice(cust=cust)
    return [
        ns.map_customer(cust, t),
        ns.map_invoice(inv, t, customer=cust),
        ns.map_credit_note(credit_note(inv=inv), t),
        ns.map_payment(payment(amount="600.00", apps=((inv.id, inv.number, "586.66"),)), t),
    ]
