"""What a test world reads and does on the CRM side of the contacts sync, over its
``store`` and ``clock``: shared by the sandbox world and the fakes' world."""

from __future__ import annotations

from typing import Any

from core.model import CONTACTS, LINKS, SYNC_STATE, stamp
from functions.seed import ALICE
from functions.seed import ALICE_TAG as TAG


class CrmSide:
    store: Any
    clock: Any

    def contact(self, crm_id: str) -> dict[str, Any]:
        return self.store.get(CONTACTS, crm_id)

    def edit_contact(self, crm_id: str, **fields: Any) -> None:
        doc = self.contact(crm_id)
        self.store.put(CONTACTS, crm_id, {**doc, **fields, "modifiedAt": self.now()})

    def now(self) -> str:
        return stamp(self.clock.now())

    def tagged_ids(self) -> set[str]:
        return {
            d.id
            for d in self.store.scan(CONTACTS, order_by="modifiedAt")
            if TAG in d.data.get("tagIds", []) and not d.data.get("deletedAt")
        }

    def links(self) -> dict[str, str]:
        """The active pairs, CRM id -> resource name (parked links left out)."""
        docs = self.store.scan(LINKS, order_by="crmId")
        return {d.data["crmId"]: d.data["googleId"] for d in docs if not d.data.get("parked")}

    def synced(self) -> dict[str, dict[str, Any]]:
        """The active pairs' fields as last synced (their links'), by CRM id."""
        docs = self.store.scan(LINKS, order_by="crmId")
        return {d.data["crmId"]: d.data.get("fields") or {} for d in docs
                if not d.data.get("parked")}  # fmt: skip

    def state(self) -> dict[str, Any]:
        return self.store.get(SYNC_STATE, f"{ALICE}:contacts") or {}

    def group(self) -> str:
        return self.state()["groupResourceName"]
