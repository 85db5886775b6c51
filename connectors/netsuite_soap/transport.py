"""Talking SOAP to NetSuite: the WSDL (zeep, once per process), the tokenPassport (TBA), the
envelope, and one request through httpx with the concurrency limit and the retry policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import httpx
import requests
import zeep
import zeep.exceptions
from lxml import etree

from connectors.http import RetryCount, classify_status, classify_transport_error
from connectors.limits import Limiter
from connectors.netsuite_soap.faults import fault_error
from connectors.netsuite_soap.replies import child
from connectors.netsuite_soap.settings import (
    BINDING,
    NS_CORE,
    NS_MESSAGES,
    NS_SOAP,
    SYSTEM,
    NetSuiteSoapSettings,
)
from core.errors import ConfigError, PermanentError, RetryableError

# zeep logs whole envelopes (tokenPassport included) at DEBUG; we never send through zeep, and
# make sure nobody turning on DEBUG gets them either.
logging.getLogger("zeep.transports").disabled = True

_clients: dict[str, zeep.Client] = {}
_clients_lock = threading.Lock()


# zeep ships py.typed but leaves its functions unannotated: calls into it are marked
# ``type: ignore[no-untyped-call]`` one by one, or go through the typed ``ZeepClient`` below.


class ZeepClient(Protocol):
    """The part of ``zeep.Client`` the connector uses, with the types zeep leaves out."""

    def create_service(self, binding_name: str, address: str) -> Any: ...

    def create_message(
        self, service: Any, operation_name: str, *args: Any, **kwargs: Any
    ) -> etree._Element: ...

    def get_type(self, name: str) -> Any: ...

    def get_element(self, name: str) -> Any: ...


class _SameOriginTransport(zeep.Transport):
    """Loads WSDL/XSD documents only from the WSDL's own origin (scheme, host, port)."""

    def __init__(self, origin: str, timeout: float) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout)  # type: ignore[no-untyped-call]
        self._origin = origin

    def load(self, url: str) -> bytes:
        """The document at ``url``; refuses any other origin (no fetching from elsewhere)."""
        if _origin(url) != self._origin:
            raise ConfigError("wsdl", f"the WSDL imports {url}, outside {self._origin}")
        return cast("bytes", super().load(url))  # type: ignore[no-untyped-call]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def soap_client(wsdl: str, timeout: float = 60.0) -> zeep.Client:
    """The zeep client of ``wsdl``, built once per process (loading the WSDL takes ~0.5 s).

    Parsing is locked down: no DTDs, no entities, no huge trees. A local WSDL may not reference
    anything remote (``forbid_external``); a WSDL served over HTTP(S) imports its XSDs from its
    own server, which zeep's ``forbid_external`` would refuse, so there the transport allows
    exactly that origin and nothing else.
    """
    with _clients_lock:
        client = _clients.get(wsdl)
        if client is None:
            remote = urlsplit(wsdl).scheme in ("http", "https")
            settings = zeep.Settings(
                strict=True,
                xml_huge_tree=False,
                forbid_dtd=True,
                forbid_entities=True,
                forbid_external=not remote,
            )
            transport = (
                _SameOriginTransport(_origin(wsdl), timeout)
                if remote
                else zeep.Transport(timeout=timeout, operation_timeout=timeout)  # type: ignore[no-untyped-call]
            )
            try:
                client = zeep.Client(wsdl, settings=settings, transport=transport)  # type: ignore[no-untyped-call]
            except (requests.RequestException, OSError) as exc:
                raise RetryableError(
                    "netsuite", "load WSDL", f"cannot fetch {wsdl}: {type(exc).__name__}"
                ) from exc
            except (etree.XMLSyntaxError, zeep.exceptions.Error) as exc:
                raise PermanentError(
                    "netsuite", "load WSDL", f"{wsdl} is not a usable WSDL: {exc}"
                ) from exc
            _clients[wsdl] = client
        return client


def tba_signature(
    account: str,
    consumer_key: str,
    token: str,
    nonce: str,
    timestamp: int,
    consumer_secret: str,
    token_secret: str,
) -> str:
    """The tokenPassport signature: base64(HMAC-SHA256(cs&ts, account&ck&token&nonce&ts))."""
    base = "&".join((account, consumer_key, token, nonce, str(timestamp)))
    key = f"{consumer_secret}&{token_secret}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def default_nonce() -> str:
    """A fresh random nonce for one tokenPassport."""
    return secrets.token_hex(16)


class SoapTransport:
    """One NetSuite account's SOAP requests: envelopes with a fresh passport, sent through httpx
    inside the concurrency ``limiter``, retried by the settings' policy; replies parsed safely
    and faults raised as the error taxonomy."""

    def __init__(
        self,
        settings: NetSuiteSoapSettings,
        http: httpx.Client,
        limiter: Limiter,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = default_nonce,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.retries = RetryCount()
        self.zeep = cast("ZeepClient", soap_client(settings.wsdl))
        self._service = self.zeep.create_service(BINDING, settings.endpoint)
        self._passport = self.zeep.get_element(f"{{{NS_MESSAGES}}}tokenPassport")
        self._http = http
        self._limiter = limiter
        self._clock = clock
        self._nonce = nonce
        self._sleep = sleep

    def token_passport(self) -> Any:
        """A fresh tokenPassport header (new nonce and timestamp each call)."""
        s = self.settings
        nonce = self._nonce()
        timestamp = int(self._clock())
        signature = tba_signature(
            s.account,
            s.consumer_key.reveal(),
            s.token_id.reveal(),
            nonce,
            timestamp,
            s.consumer_secret.reveal(),
            s.token_secret.reveal(),
        )
        passport_type = self.zeep.get_type(f"{{{NS_CORE}}}TokenPassport")
        signature_type = self.zeep.get_type(f"{{{NS_CORE}}}TokenPassportSignature")
        return passport_type(
            account=s.account,
            consumerKey=s.consumer_key.reveal(),
            token=s.token_id.reveal(),
            nonce=nonce,
            timestamp=timestamp,
            signature=signature_type(signature, algorithm="HMAC-SHA256"),
        )

    def envelope(
        self, operation: str, *, headers: Mapping[str, Any] | None = None, **body: Any
    ) -> bytes:
        """The serialised SOAP request for ``operation`` with a fresh passport (and ``headers``,
        e.g. ``searchPreferences``), built by zeep from keyword values."""
        soapheaders = {**(headers or {}), "tokenPassport": self.token_passport()}
        message = self.zeep.create_message(
            self._service, operation, **body, _soapheaders=soapheaders
        )
        return cast("bytes", etree.tostring(message, xml_declaration=True, encoding="utf-8"))

    def envelope_of(self, operation: str, children: Iterable[etree._Element]) -> bytes:
        """The serialised SOAP request for ``operation`` whose body element holds ``children``
        (records written by ``messages.RecordWriter``), with a fresh passport."""
        root = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap={"soap-env": NS_SOAP})
        header = etree.SubElement(root, f"{{{NS_SOAP}}}Header")
        self._passport.render(header, self.token_passport())
        body = etree.SubElement(root, f"{{{NS_SOAP}}}Body")
        request = etree.SubElement(
            body, f"{{{NS_MESSAGES}}}{operation}", nsmap={"msg": NS_MESSAGES}
        )
        request.extend(children)
        return cast("bytes", etree.tostring(root, xml_declaration=True, encoding="utf-8"))

    def call(
        self, operation: str, content: Callable[[], bytes], *, write: bool = False
    ) -> etree._Element:
        """The reply of ``operation`` (``content`` makes the envelope, once per attempt: NetSuite
        refuses a nonce it has seen). A write whose outcome is unknown is not resent here."""
        return self.settings.retry.call(
            lambda: self._post_once(operation, content()),
            sleep=self._sleep,
            retries=self.retries,
            resend_unknown=not write,
        )

    def _post_once(self, operation: str, content: bytes) -> etree._Element:
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": operation}
        with self._limiter.slot():
            try:
                response = self._http.post(self.settings.endpoint, content=content, headers=headers)
            except httpx.TransportError as exc:
                raise classify_transport_error(SYSTEM, operation, exc) from exc
        root = self._parse(operation, response)
        fault = child(child(root, "Body"), "Fault") if root is not None else None
        if fault is not None:
            raise fault_error(operation, fault, response.status_code)
        error = classify_status(SYSTEM, operation, response)
        if error is not None:
            raise error
        if root is None:
            raise PermanentError(SYSTEM, operation, "reply is not XML")
        return root

    @staticmethod
    def _parse(operation: str, response: httpx.Response) -> etree._Element | None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            return etree.fromstring(response.content, parser)
        except etree.XMLSyntaxError:
            if response.status_code < 400:
                raise RetryableError(SYSTEM, operation, "reply is not well-formed XML") from None
            return None
