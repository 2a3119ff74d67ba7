"""Orders of the simulated SCM, their status values and optional JSON persistence.

An :class:`Order` is one SSL certificate request (one ``sslId``). The
:class:`OrderBook` owns every order, hands out ids and, when given a state
file, keeps it so a restarted simulator still has its orders and issued
certificates. The state machine itself (what moves an order from one status
to the next) lives in ``manager.py``.

The state file is JSON Lines: a header ``{"version": 1, "nextSslId": N}``,
then one ``{"order": {...}}`` line per change (the last line of an order
wins). Appending keeps every change O(1) and survives a killed process (a
torn last line is ignored); the file is compacted to one line per order when
the book is loaded and when the simulator stops.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.errors import ConfigError

__all__ = ["Order", "OrderBook", "OrderStatus"]

_STATE_VERSION = 1


class OrderStatus(enum.StrEnum):
    """The SCM ``status`` strings the simulator uses (reference §2.7)."""

    REQUESTED = "Requested"
    APPLIED = "Applied"
    ISSUED = "Issued"
    REVOKED = "Revoked"
    DECLINED = "Declined"
    EXPIRED = "Expired"


@dataclass
class Order:
    """One SSL order. Times are seconds on the simulator clock; SANs are tagged (``DNS:a.example``)."""

    ssl_id: int
    renew_id: str
    org_id: int
    cert_type_id: int
    term: int
    csr: str
    common_name: str
    sans: list[str]
    requester: str
    status: OrderStatus
    requested_at: float
    comments: str = ""
    external_requester: str = ""
    custom_fields: list[dict[str, str]] = field(default_factory=list)
    key_algorithm: str = ""
    key_size: int = 0
    key_type: str = ""
    approved_at: float | None = None
    issue_due_at: float | None = None
    pending_polls: int = 0
    issued_at: float | None = None
    expires_at: float | None = None
    certificate: str | None = None
    serial_number: int | None = None
    revoked_at: float | None = None
    revocation_reason_code: int | None = None
    revocation_reason: str = ""
    declined_at: float | None = None
    replaced_at: float | None = None
    renewed: bool = False
    renewed_at: float | None = None
    renewed_from: int | None = None
    previous_serials: list[int] = field(default_factory=list)
    revoked_previous: list[int] = field(default_factory=list)  # replaced certificates revoked by serial

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Order:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = OrderStatus(values["status"])
        return cls(**values)


class OrderBook:
    """All orders by ``sslId``, with id allocation and optional persistence to ``state_file``."""

    def __init__(self, *, first_ssl_id: int, state_file: Path | None = None) -> None:
        self._orders: dict[int, Order] = {}
        self._next_id = first_ssl_id
        self._state_file = state_file
        if state_file is not None:
            if state_file.exists():
                self._load(state_file)
            else:
                self.save()  # the header line, so appends always follow one

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[Order]:
        return iter(list(self._orders.values()))

    def __repr__(self) -> str:
        return f"OrderBook(orders={len(self._orders)}, next_ssl_id={self._next_id})"

    def allocate_id(self) -> int:
        ssl_id = self._next_id
        self._next_id += 1
        return ssl_id

    def add(self, order: Order) -> None:
        self._orders[order.ssl_id] = order
        self.record(order)

    def get(self, ssl_id: int) -> Order | None:
        return self._orders.get(ssl_id)

    def by_renew_id(self, renew_id: str) -> Order | None:
        return next((o for o in self._orders.values() if o.renew_id == renew_id), None)

    def by_serial(self, serial: int) -> Order | None:
        return next((o for o in self._orders.values() if o.serial_number == serial), None)

    def by_previous_serial(self, serial: int) -> Order | None:
        """The order that was issued again (replace) past the certificate with ``serial``."""
        return next((o for o in self._orders.values() if serial in o.previous_serials), None)

    def find(
        self,
        *,
        comments: str | None = None,
        common_name: str | None = None,
        status: OrderStatus | str | None = None,
    ) -> list[Order]:
        """Orders matching every given criterion (exact match), in ``sslId`` order; for tests."""
        return [
            o
            for o in self._orders.values()
            if (comments is None or o.comments == comments)
            and (common_name is None or o.common_name == common_name)
            and (status is None or o.status == status)
        ]

    def record(self, order: Order) -> None:
        """Append the current state of ``order`` to the state file (if there is one)."""
        if self._state_file is None:
            return
        line = json.dumps({"order": order.to_json()}, separators=(",", ":"))
        with self._state_file.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def save(self) -> None:
        """Rewrite the state file atomically with one line per order (compaction)."""
        if self._state_file is None:
            return
        path = self._state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"version": _STATE_VERSION, "nextSslId": self._next_id})]
        lines += [json.dumps({"order": o.to_json()}, separators=(",", ":")) for o in self._orders.values()]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("version") != _STATE_VERSION:
                raise ValueError(f"unsupported version {header.get('version')!r}")
            next_id = int(header["nextSslId"])
            orders: dict[int, Order] = {}
            for number, line in enumerate(lines[1:], start=2):
                try:
                    item = json.loads(line)
                except ValueError:
                    if number == len(lines):  # torn by a kill in the middle of an append
                        break
                    raise
                order = Order.from_json(item["order"])
                orders[order.ssl_id] = order
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"simulator state file {path} cannot be read: {exc}") from exc
        self._orders = orders
        self._next_id = max([next_id, *(o.ssl_id + 1 for o in orders.values())])
        self.save()
