"""Connectors: one module (Tryton: a package) per external system and transport. They know
nothing of the ledger.

May import: ``core`` (the documents they send, the errors they raise) and ``finsync.config`` /
``finsync.db`` (settings, the slots' database); never ``sync``, ``mappings``, the reports or the
console (import-linter checks it).

``build_connector`` turns a target's config section into a connector, through a registry of
factories keyed by system name. Factories import their module lazily, so a run that only talks
to AvaTax never loads zeep.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import Connector
from core.errors import ConfigError
from finsync.config import TargetConfig

#: Builds a connector from a target's section. ``state_url`` is the state store's database, where
#: connectors that limit concurrency across processes keep their slots.
Factory = Callable[[TargetConfig, str | None], Connector]
_FACTORIES: dict[str, Factory] = {}


def register(system: str, factory: Factory) -> None:
    """Register the connector factory of ``system``; a second registration is refused."""
    if system in _FACTORIES:
        raise ValueError(f"a connector factory for {system!r} is already registered")
    _FACTORIES[system] = factory


def build_connector(target: TargetConfig, *, state_url: str | None = None) -> Connector:
    """Build the connector of ``target``, validating its settings. Raises ConfigError."""
    try:
        factory = _FACTORIES[target.system]
    except KeyError:
        raise ConfigError(
            f"targets.{target.name}.system", f"no connector for system {target.system!r}"
        ) from None
    return factory(target, state_url)


def _scripted(target: TargetConfig, state_url: str | None) -> Connector:
    from connectors.scripted import ScriptedConnector, ScriptedSettings

    return ScriptedConnector(ScriptedSettings.from_section(target.options))


def _netsuite(target: TargetConfig, state_url: str | None) -> Connector:
    from connectors.netsuite_soap import build_netsuite

    return build_netsuite(target, state_url=state_url)


def _avatax(target: TargetConfig, state_url: str | None) -> Connector:
    from connectors.avatax import build_avatax

    return build_avatax(target)


def _tryton(target: TargetConfig, state_url: str | None) -> Connector:
    from connectors.tryton import build_tryton

    return build_tryton(target)


register("scripted", _scripted)
register("netsuite", _netsuite)
register("avatax", _avatax)
register("tryton", _tryton)
