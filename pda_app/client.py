"""The PDA's connection to the hub, stdlib only (urllib) so it runs under python-for-android."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any


class PdaError(Exception):
    """Base class of PDA errors."""


class HubUnavailable(PdaError):
    """The hub could not be reached; the scan stays queued on the device."""


class HubRefused(PdaError):
    """The hub answered with an error; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"hub refused ({status}): {message}")
        self.status = status


@dataclass(frozen=True)
class HubClient:
    base_url: str
    token: str
    timeout: float = 15.0

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call a JSON endpoint and return the decoded answer."""
        return json.loads(self._send(method, path, body) or b"null")

    def text(self, path: str) -> str:
        """GET a text endpoint (e.g. a CSV export)."""
        return self._send("GET", path, None).decode("utf-8")

    def upload(self, path: str, data: bytes, content_type: str) -> Any:
        """POST a file (e.g. an ERP order CSV) and return the decoded JSON answer."""
        return json.loads(self._send("POST", path, None, raw=(data, content_type)) or b"null")

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        raw: tuple[bytes, str] | None = None,
    ) -> bytes:
        url = self.base_url.rstrip("/") + path
        if not url.startswith(("http://", "https://")):
            raise PdaError(f"Hub URL must be http(s)://..., got {self.base_url!r}")
        data = None if body is None else json.dumps(body).encode()
        content_type = "application/json"
        if raw is not None:
            data, content_type = raw
        req = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=data,
            method=method,
            headers={
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                "Content-Type": content_type,
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                message = str(exc.reason)
            raise HubRefused(exc.code, message) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise HubUnavailable(f"cannot reach the hub at {self.base_url}: {exc}") from None

    def ship(
        self,
        order: str,
        dealer: str,
        codes: list[str],
        *,
        region: str | None = None,
        shipment_id: str | None = None,
    ) -> dict[str, Any]:
        """Activate ``codes`` for an order. Reuse ``shipment_id`` when retrying: the hub
        then returns the first result instead of shipping twice."""
        body: dict[str, Any] = {
            "id": shipment_id or str(uuid.uuid4()),
            "order": order,
            "dealer": dealer,
            "codes": codes,
        }
        if region is not None:
            body["region"] = region
        result: dict[str, Any] = self.request("POST", "/api/v1/shipments", body)
        return result

    # The PDA API (scanning against orders) ------------------------------------------------
    def assigned_orders(self, device: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"device": device})
        found: list[dict[str, Any]] = self.request("GET", f"/api/v1/pda/orders?{query}")["orders"]
        return found

    def download(self, number: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/api/v1/pda/orders/{_quote(number)}")
        return found

    def upload_scans(self, number: str, device: str, scans: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = self.request(
            "POST",
            f"/api/v1/pda/orders/{_quote(number)}/scans",
            {"device": device, "scans": scans},
        )
        return answer

    def lookup_code(self, number: str, code: str) -> dict[str, Any]:
        """What the hub knows of a code the order's download does not list."""
        query = urllib.parse.urlencode({"code": code})
        answer: dict[str, Any] = self.request(
            "GET", f"/api/v1/pda/orders/{_quote(number)}/codes?{query}"
        )
        return answer

    def complete(self, number: str, completion_id: str, reason: str | None) -> dict[str, Any]:
        answer: dict[str, Any] = self.request(
            "POST",
            f"/api/v1/pda/orders/{_quote(number)}/complete",
            {"id": completion_id, "reason": reason},
        )
        return answer

    def receive(self, number: str, receipt_id: str, codes: list[str]) -> dict[str, Any]:
        answer: dict[str, Any] = self.request(
            "POST",
            f"/api/v1/pda/orders/{_quote(number)}/receipts",
            {"id": receipt_id, "codes": codes},
        )
        return answer

    def lookup(self, code: str, region: str | None = None) -> dict[str, Any]:
        query = urllib.parse.urlencode({"code": code, **({"region": region} if region else {})})
        answer: dict[str, Any] = self.request("GET", f"/api/v1/pda/lookup?{query}")
        return answer


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")
