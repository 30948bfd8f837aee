"""Webhook deliveries as a receiver meets them: a plain HTTP server on 127.0.0.1 verifies
every delivery with the Standard Webhooks reference library (`standardwebhooks`), and the
same library rejects a tampered body, a wrong secret and a replay outside its tolerance.

Run by tests/python/run.sh (RAPPORT_BASE, RAPPORT_KEY; the server allows private targets).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import httpx2
import pytest
import standardwebhooks.webhooks as sw
from standardwebhooks import Webhook, WebhookVerificationError

BASE = os.environ.get("RAPPORT_BASE", "")
KEY = os.environ.get("RAPPORT_KEY", "")

pytestmark = pytest.mark.skipif(not BASE or not KEY, reason="run through tests/python/run.sh")


class Receiver:
    """Keeps every request: headers and raw body."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.lock:
                    outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 20) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.05)
        raise AssertionError(f"expected {n} deliveries, got {len(self.got)}")


@pytest.fixture()
def http():
    with httpx2.Client(base_url=f"{BASE}/api/v1", headers={"x-api-key": KEY}, timeout=30) as c:
        yield c


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def test_every_delivery_verifies_and_forgeries_do_not(http: httpx2.Client, receiver: Receiver) -> None:
    r = http.post("/webhooks", json={"url": receiver.url, "events": ["contact.*"], "description": "py"})
    assert r.status_code == 201, r.text
    hook = r.json()
    secret = hook["secret"]
    try:
        r = http.post("/contacts", json={"first_name": "Grace", "title": "Captain"})
        assert r.status_code == 201, r.text
        contact = r.json()
        cid = contact["id"]
        for title in ["Admiral", "Admiral", "Rear Admiral"]:  # the repeat changes nothing
            r = http.patch(f"/contacts/{cid}", json={"title": title})
            assert r.status_code == 200, r.text
        got = receiver.wait_for(3)
        time.sleep(1)
        assert len(receiver.got) == 3, "a no-op update sends nothing"

        wh = Webhook(secret)
        payloads = [wh.verify(body, headers) for headers, body in got]
        assert [p["type"] for p in payloads] == ["contact.created", "contact.updated", "contact.updated"]
        assert all(h["content-type"] == "application/json" for h, _ in got)
        assert payloads[0]["data"]["record"]["first_name"] == "Grace"
        assert payloads[1]["data"]["changes"]["title"] == {"before": "Captain", "after": "Admiral"}
        assert payloads[2]["data"]["changes"]["title"] == {"before": "Admiral", "after": "Rear Admiral"}
        assert payloads[2]["data"]["record"]["title"] == "Rear Admiral"

        headers, body = got[1]
        tampered = json.loads(body)
        tampered["data"]["changes"]["title"]["after"] = "Pirate"
        with pytest.raises(WebhookVerificationError):
            wh.verify(json.dumps(tampered).encode(), headers)
        with pytest.raises(WebhookVerificationError):
            wh.verify(body + b" ", headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").verify(body, headers)
        # A replay six minutes later is outside the library's five-minute tolerance.
        later = datetime.now(tz=timezone.utc) + timedelta(minutes=6)
        with mock.patch.object(sw, "datetime", wraps=datetime) as clock:
            clock.now.return_value = later
            with pytest.raises(WebhookVerificationError):
                wh.verify(body, headers)

        # During a rotation both secrets sign: a receiver still on the old one, and one
        # already on the new, both accept.
        r = http.patch(f"/webhooks/{hook['id']}", json={"rotate_secret": True})
        assert r.status_code == 200, r.text
        new_secret = r.json()["secret"]
        assert new_secret != secret
        assert http.get("/webhooks").json()["items"][0].get("secret") is None
        r = http.patch(f"/contacts/{cid}", json={"title": "Commodore"})
        assert r.status_code == 200, r.text
        headers, body = receiver.wait_for(4)[3]
        assert len(headers["webhook-signature"].split(" ")) == 2
        assert Webhook(secret).verify(body, headers)["data"]["record"]["title"] == "Commodore"
        assert Webhook(new_secret).verify(body, headers)["data"]["record"]["title"] == "Commodore"

        # Every attempt is listed, with the receiver's status.
        r = http.get(f"/webhooks/{hook['id']}/deliveries", params={"limit": 10})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 4 and all(d["state"] == "delivered" for d in items)
        assert {d["id"] for d in items} == {h["webhook-id"] for h, _ in receiver.got}
        assert all(d["attempts"][0]["status"] == 204 for d in items)
    finally:
        http.delete(f"/webhooks/{hook['id']}")
