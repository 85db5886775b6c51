"""What the SOAP connector is configured with: the endpoint version, its caps and namespaces,
and ``NetSuiteSoapSettings`` read from a target's config section."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.http import RetryPolicy
from connectors.netsuite_common import transport_settings
from core.errors import ConfigError
from finsync.config import Secret, Section

SYSTEM = "netsuite"
#: The SOAP endpoint version this connector speaks.
VERSION = "2023_2"
#: NetSuite's own WSDL for the version (a local path or file: URL works too).
DEFAULT_WSDL = "https://webservices.netsuite.com/wsdl/v2023_2_0/netsuite.wsdl"
#: NetSuite's synchronous caps: upsertList 100 records, getList 1000 references.
MAX_UPSERT = 100
MAX_GET = 1000
#: Largest search page NetSuite returns.
MAX_SEARCH_PAGE = 1000

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_MESSAGES = f"urn:messages_{VERSION}.platform.webservices.netsuite.com"
NS_CORE = f"urn:core_{VERSION}.platform.webservices.netsuite.com"
NS_COMMON = f"urn:common_{VERSION}.platform.webservices.netsuite.com"
NS_ACCOUNTING = f"urn:accounting_{VERSION}.lists.webservices.netsuite.com"
BINDING = f"{{urn:platform_{VERSION}.webservices.netsuite.com}}NetSuiteBinding"


def default_endpoint(account: str) -> str:
    """The account-specific SOAP URL: ``1234567_SB1`` -> ``https://1234567-sb1.suitetalk...``."""
    host = account.lower().replace("_", "-")
    return f"https://{host}.suitetalk.api.netsuite.com/services/NetSuitePort_{VERSION}"


@dataclass(frozen=True)
class NetSuiteSoapSettings:
    """Everything the SOAP connector needs; secrets are ``Secret`` and never printed."""

    account: str
    consumer_key: Secret
    consumer_secret: Secret
    token_id: Secret
    token_secret: Secret
    wsdl: str = DEFAULT_WSDL
    endpoint: str = ""
    batch_size: int = MAX_UPSERT
    concurrency: int = 5
    timeout_seconds: float = 120.0
    retry_attempts: int = 5
    retry_deadline_seconds: float = 300.0
    backoff_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not self.endpoint:
            object.__setattr__(self, "endpoint", default_endpoint(self.account))
        if not 1 <= self.batch_size <= MAX_UPSERT:
            raise ConfigError("batch_size", f"must be between 1 and {MAX_UPSERT}")

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy inside one call."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            deadline_seconds=self.retry_deadline_seconds,
            backoff_seconds=self.backoff_seconds,
        )

    @classmethod
    def from_section(cls, section: Section) -> NetSuiteSoapSettings:
        """Read and validate a config section; ConfigError names the bad key."""
        account = section.str("account", required=True)
        if account != account.upper():
            # NetSuite's realm is case-sensitive in the signature: 1234567_SB1, not 1234567_sb1.
            raise ConfigError(
                section.key("account"), f"write the account id in upper case ({account.upper()!r})"
            )
        settings = cls(
            account=account,
            consumer_key=_secret(section, "consumer_key"),
            consumer_secret=_secret(section, "consumer_secret"),
            token_id=_secret(section, "token_id"),
            token_secret=_secret(section, "token_secret"),
            wsdl=section.str("wsdl", DEFAULT_WSDL),
            endpoint=section.str("endpoint", default_endpoint(account)),
            batch_size=section.int("batch_size", MAX_UPSERT, minimum=1, maximum=MAX_UPSERT),
            **transport_settings(section),
        )
        section.done()
        return settings


def _secret(section: Section, name: str) -> Secret:
    value = section.secret(name)
    assert value is not None  # required=True raises instead
    return value
