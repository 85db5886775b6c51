"""Parties: a customer found by its external-id identifier, else created (in batches)."""

from __future__ import annotations

from typing import Any

from connectors.tryton.books import TrytonBooks
from core.documents import Document, WriteResult


class TrytonParties(TrytonBooks):
    """Parties in Tryton."""

    def _party_values(self, doc: Document) -> dict[str, Any]:
        payload = doc.payload
        values: dict[str, Any] = {"name": payload["name"], "code": payload["code"]}
        if payload.get("email"):
            values["contact_mechanisms"] = [
                ("create", [{"type": "email", "value": payload["email"]}])
            ]
        address = {k: v for k, v in payload.get("address", {}).items() if k in ("street", "city")}
        if payload.get("address", {}).get("postal_code"):
            address["postal_code"] = payload["address"]["postal_code"]
        values["addresses"] = [("create", [address])]
        values["identifiers"] = [("create", [{"code": doc.external_id}])]
        return values

    def _send_parties(self, items: list[tuple[int, Document]]) -> dict[int, WriteResult]:
        found = self._find_parties(doc.external_id for _, doc in items)
        results: dict[int, WriteResult] = {}
        new = [(i, doc) for i, doc in items if doc.external_id not in found]
        for i, doc in items:
            if doc.external_id in found:
                party = found[doc.external_id]
                self.rpc.call(
                    "model.party.party.write", [party], {"name": doc.payload["name"]}, writes=True
                )
                results[i] = WriteResult(doc.external_id, ok=True, internal_id=str(party))

        def create(batch: list[tuple[int, Document]]) -> None:
            ids = self.rpc.call(
                "model.party.party.create", [self._party_values(d) for _, d in batch], writes=True
            )
            for (i, doc), party in zip(batch, ids, strict=True):
                self._parties[doc.external_id] = party
                results[i] = WriteResult(
                    doc.external_id, ok=True, internal_id=str(party), created=True
                )

        failures = self._batched(new, create, lambda item: create([item]))
        for n, failure in failures.items():
            i, doc = new[n]
            results[i] = WriteResult(doc.external_id, ok=False, error=failure)
        return results
