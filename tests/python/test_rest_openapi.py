"""The REST API as an outsider meets it: the OpenAPI document, checked with
openapi-spec-validator, then a contact's whole life driven from the document's paths alone;
and /metrics, read by the official Prometheus client's parser.

Run by tests/python/run.sh, which exports RAPPORT_BASE (http://HOST:PORT) and RAPPORT_KEY.
"""

from __future__ import annotations

import os

import httpx2
import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

BASE = os.environ.get("RAPPORT_BASE", "")
KEY = os.environ.get("RAPPORT_KEY", "")

pytestmark = pytest.mark.skipif(not BASE or not KEY, reason="run through tests/python/run.sh")


@pytest.fixture(scope="module")
def spec() -> dict:
    r = httpx2.get(f"{BASE}/api/v1/openapi.json", timeout=30)
    assert r.status_code == 200, "the document is public"
    return r.json()


def operation(spec: dict, operation_id: str) -> tuple[str, str]:
    """The method and full URL template of an operation, found by its id."""
    server = spec["servers"][0]["url"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return method.upper(), f"{BASE}{server}{path}"
    raise AssertionError(f"no operation {operation_id}")


def test_the_document_is_valid_openapi_3_1(spec: dict) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["bearer"]["scheme"] == "bearer"


def test_a_contact_from_the_paths_alone(spec: dict) -> None:
    with httpx2.Client(headers={"x-api-key": KEY}, timeout=30) as http:
        method, url = operation(spec, "create_contacts")
        r = http.request(method, url, json={"first_name": "Grace", "email": "grace@example.com"})
        assert r.status_code == 201, r.text
        contact = r.json()
        method, url = operation(spec, "get_contact")
        r = http.request(method, url.replace("{id}", contact["id"]))
        assert r.status_code == 200 and r.json()["email"] == "grace@example.com"
        method, url = operation(spec, "update_contact")
        r = http.request(method, url.replace("{id}", contact["id"]), json={"title": "Admiral"},
                         headers={"If-Match": contact["updated_at"]})
        assert r.status_code == 200 and r.json()["title"] == "Admiral", r.text
        method, url = operation(spec, "list_contacts")
        r = http.request(method, url, params={"q": "grace@", "fields": "title"})
        assert [c["title"] for c in r.json()["items"]] == ["Admiral"]
        method, url = operation(spec, "delete_contact")
        assert http.request(method, url.replace("{id}", contact["id"])).status_code == 204
        method, url = operation(spec, "get_contact")
        r = http.request(method, url.replace("{id}", contact["id"]))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        # Bearer works as well as x-api-key, and no key is refused in the error shape.
        r = httpx2.get(operation(spec, "list_contacts")[1], headers={"authorization": f"Bearer {KEY}"}, timeout=30)
        assert r.status_code == 200
        r = httpx2.get(operation(spec, "list_contacts")[1], timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"


def test_metrics_parse_with_the_prometheus_client() -> None:
    httpx2.get(f"{BASE}/api/v1/contacts", headers={"x-api-key": KEY}, timeout=30)
    r = httpx2.get(f"{BASE}/metrics", timeout=30)
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ["rapport_http_requests", "rapport_http_request_duration_seconds", "rapport_auth_failures",
                 "rapport_tool_calls", "rapport_webhook_deliveries", "rapport_db_pool_connections"]:
        assert name in families, (name, sorted(families))
    assert families["rapport_http_request_duration_seconds"].type == "histogram"
    # Requests being handled, less the one reading it: none, between these sequential calls.
    in_flight = families["rapport_http_requests_in_flight"]
    assert in_flight.type == "gauge" and in_flight.samples[0].value == 0, in_flight
    routes = {s.labels.get("route") for s in families["rapport_http_requests"].samples}
    assert "/api/v1/contacts" in routes, routes
