"""End-to-end test of Rapport's MCP endpoint with the official MCP Python SDK (v2).

Run by tests/python/run.sh, which starts a real `rapport serve` and exports:

    RAPPORT_URL  http://HOST:PORT/api/v1/mcp
    RAPPORT_KEY  an owner key from `rapport keys create --role owner --json`

Covered:
  (a) the handshake era: streamable_http_client + ClientSession.initialize(), tools/list,
      tools/call round trip (create_contacts -> search_records -> get_records) and tool errors,
      and a whole sales scenario (upserts, a deal won, a task, a note, the timeline);
  (b) mcp.Client(mode="auto"), which probes `server/discover` (2026-07-28) first;
  (c) a wrong key fails fast with 401 instead of hanging.
"""

from __future__ import annotations

import json
import os
import secrets
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, PaginatedRequestParams, PromptReference, TextContent
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION

URL = os.environ.get("RAPPORT_URL", "")
KEY = os.environ.get("RAPPORT_KEY", "")

# Generous per-test ceiling: a debug build on a busy 2-core CI box, but never a hang.
TEST_TIMEOUT_S = 60
READ_TIMEOUT_S = 30

# SPEC 5: the lean profile (the default) and the full one, chosen by `?profile=` on the URL.
REQUIRED_TOOLS = {
    "lean": {"get_workspace", "search_records", "write_records", "get_records", "manage_webhooks"},
    "full": {"get_workspace", "search_records", "create_contacts", "get_records", "create_webhook"},
}

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not URL or not KEY, reason="RAPPORT_URL and RAPPORT_KEY must be set (see run.sh)"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers


def http_client(key: str | None, statuses: list[int] | None = None) -> httpx2.AsyncClient:
    """An httpx2 client sending `x-api-key`; records every response status into `statuses`."""
    headers = {"x-api-key": key} if key is not None else {}
    hooks: dict[str, list[Any]] = {}
    if statuses is not None:

        async def record(response: httpx2.Response) -> None:
            statuses.append(response.status_code)

        hooks["response"] = [record]
    return httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(READ_TIMEOUT_S),
        event_hooks=hooks,
    )


@asynccontextmanager
async def handshake_session(
    key: str | None = KEY, statuses: list[int] | None = None, url: str = URL
) -> AsyncIterator[ClientSession]:
    """A handshake-era ClientSession over streamable HTTP (not yet initialized)."""
    async with http_client(key, statuses) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as session:
                yield session


@asynccontextmanager
async def initialized_session() -> AsyncIterator[ClientSession]:
    async with handshake_session() as session:
        await session.initialize()
        # The SDK validates structured content against the output schemas it learnt from
        # tools/list; list once so every call below is checked.
        await session.list_tools()
        yield session


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def ok(result: CallToolResult) -> dict[str, Any]:
    """Assert a successful tool result whose text is the same JSON as structuredContent."""
    assert not result.is_error, f"tool returned isError: {text_of(result)}"
    sc = result.structured_content
    assert isinstance(sc, dict), f"structuredContent missing or not an object: {sc!r}"
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    assert texts, f"no text content in result: {result.content!r}"
    assert json.loads(texts[0]) == sc, "text content is not the same JSON as structuredContent"
    return sc


async def call_expecting_tool_error(session: ClientSession, name: str, args: dict[str, Any]) -> str:
    """Call a tool that must answer with a tool result carrying isError (not a protocol error)."""
    try:
        result = await session.call_tool(name, args)
    except MCPError as e:  # a protocol error is the wrong channel for bad arguments
        pytest.fail(
            f"{name}({json.dumps(args)}) raised a JSON-RPC protocol error {e.code} {e.message!r}; "
            "expected a tool result with isError: true"
        )
    assert isinstance(result, CallToolResult)
    text = text_of(result)
    assert result.is_error, f"{name}({json.dumps(args)}) should fail but returned: {text}"
    assert text.strip(), "error result carries no message"
    return text


def _find_mcp_error(exc: BaseException) -> MCPError | None:
    """The MCPError inside `exc`, which the SDK's task groups may wrap in exception groups."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _find_mcp_error(inner)) is not None:
                return found
    return None


async def expect_mcp_error(connect: Callable[[], Awaitable[None]]) -> MCPError:
    """Run `connect`, which must fail with an MCPError within the time limit (no hang)."""
    try:
        with anyio.fail_after(TEST_TIMEOUT_S):
            await connect()
    except BaseException as exc:  # noqa: BLE001 - unwrap exception groups; re-raise anything else
        if (found := _find_mcp_error(exc)) is None:
            raise
        return found
    pytest.fail("connecting with a wrong key succeeded")


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(width, "0")


def make_key(body: str | None = None) -> str:
    """A well-formed key (valid checksum) per SPEC section 3."""
    body = body or "".join(secrets.choice(_B62) for _ in range(58))
    return "rpk_" + body + _base62(zlib.crc32(body.encode()), 6)


# --------------------------------------------------------------------------- sanity


def test_key_has_documented_format() -> None:
    assert len(KEY) == 68 and KEY.startswith("rpk_"), f"unexpected key shape: {KEY[:12]}…"
    assert make_key(KEY[4:62]) == KEY, "key checksum is not CRC32(random part) in base62"


# --------------------------------------------------------------------------- (a) handshake era


async def test_initialize_instructions() -> None:
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with handshake_session() as session:
            init = await session.initialize()
    assert init.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
    assert init.instructions and init.instructions.strip(), "initialize returned no instructions"
    assert "default" in init.instructions, (
        f"instructions do not name the organization 'default': {init.instructions!r}"
    )
    assert init.capabilities.tools is not None, "server does not advertise the tools capability"


@pytest.mark.parametrize("profile", ["lean", "full"])
async def test_list_tools_schemas(profile: str) -> None:
    url = URL if profile == "lean" else f"{URL}?profile=full"
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with handshake_session(url=url) as session:
            await session.initialize()
            listing = await session.list_tools()
            tools = list(listing.tools)
            cursor = listing.next_cursor
            while cursor is not None:
                page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
                tools += page.tools
                cursor = page.next_cursor

    names = {t.name for t in tools}
    required = REQUIRED_TOOLS[profile]
    assert required <= names, f"missing tools: {sorted(required - names)}"
    other = REQUIRED_TOOLS["full" if profile == "lean" else "lean"] - required
    assert not other & names, f"the {profile} profile lists {sorted(other & names)}"
    problems = []
    for tool in tools:
        schema = tool.input_schema
        if schema.get("type") != "object":
            problems.append(f"{tool.name}: inputSchema type is {schema.get('type')!r}")
        if schema.get("additionalProperties") is not False:
            problems.append(
                f"{tool.name}: inputSchema additionalProperties is "
                f"{schema.get('additionalProperties', '<absent>')!r}, expected false"
            )
        if not tool.output_schema:
            problems.append(f"{tool.name}: no outputSchema")
    assert not problems, "tool schema problems:\n  " + "\n  ".join(problems)


async def test_tool_metadata() -> None:
    """SPEC 5: every tool has a title, a description and the four annotations."""
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with initialized_session() as session:
            tools = (await session.list_tools()).tools
    problems = []
    for tool in tools:
        title = tool.title or (tool.annotations.title if tool.annotations else None)
        if not title:
            problems.append(f"{tool.name}: no title")
        if not tool.description:
            problems.append(f"{tool.name}: no description")
        a = tool.annotations
        if a is None:
            problems.append(f"{tool.name}: no annotations")
            continue
        if a.read_only_hint is None:
            problems.append(f"{tool.name}: annotation readOnlyHint not set")
        elif a.read_only_hint is False:
            # destructiveHint / idempotentHint only mean something for tools that write.
            for hint in ("destructive_hint", "idempotent_hint"):
                if getattr(a, hint) is None:
                    problems.append(f"{tool.name}: writes but annotation {hint} not set")
        if a.open_world_hint is not False:
            problems.append(f"{tool.name}: openWorldHint is {a.open_world_hint!r}, expected false")
    assert not problems, "tool metadata problems:\n  " + "\n  ".join(problems)


async def test_contact_round_trip() -> None:
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with initialized_session() as session:
            created = ok(
                await session.call_tool(
                    "create_contacts",
                    {"contacts": [{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}]},
                )
            )
            items = created.get("items")
            assert isinstance(items, list) and len(items) == 1, f"create_contacts items: {created!r}"
            contact = items[0]
            contact_id = contact.get("id")
            assert contact_id, f"created record has no id: {contact!r}"
            assert contact.get("email") == "ada@example.com"
            assert contact.get("first_name") == "Ada"

            found = ok(
                await session.call_tool(
                    "search_records",
                    {"entity": "contact", "filters": [{"field": "email", "op": "eq", "value": "ada@example.com"}]},
                )
            )
            assert isinstance(found.get("items"), list), f"search_records: {found!r}"
            assert len(found["items"]) == 1, f"expected 1 match, got {len(found['items'])}: {found!r}"
            assert found["items"][0].get("id") == contact_id
            assert "next_cursor" in found, f"search_records result has no next_cursor: {found!r}"
            assert found["next_cursor"] is None

            got = ok(await session.call_tool("get_records", {"records": [{"entity": "contact", "id": contact_id}]}))
            assert isinstance(got.get("items"), list) and len(got["items"]) == 1, f"get_records: {got!r}"
            record = got["items"][0]
            assert record.get("id") == contact_id
            assert record.get("email") == "ada@example.com"
            assert record.get("last_name") == "Lovelace"


async def test_sales_scenario() -> None:
    """An agent's whole sales workflow: upsert a company and two contacts, open a deal, move
    it to won, add a task and a note, read the timeline."""
    suffix = secrets.token_hex(4)
    domain = f"globex-{suffix}.com"
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with initialized_session() as session:
            company = ok(
                await session.call_tool(
                    "upsert_companies", {"companies": [{"name": "Globex", "domain": domain, "industry": "Energy"}]}
                )
            )["items"][0]
            assert company["status"] == "created", company
            company_id = company["record"]["id"]
            people = ok(
                await session.call_tool(
                    "upsert_contacts",
                    {
                        "contacts": [
                            {"first_name": "Hank", "last_name": "Scorpio", "email": f"hank@{domain}", "company_id": company_id},
                            {"first_name": "Homer", "email": f"homer@{domain}", "company_id": company_id},
                        ]
                    },
                )
            )["items"]
            assert [p["status"] for p in people] == ["created", "created"], people
            contact_ids = [p["record"]["id"] for p in people]
            # Upserting again with the same email updates, and says so.
            again = ok(
                await session.call_tool("upsert_contacts", {"contacts": [{"email": f"HANK@{domain}", "title": "CEO"}]})
            )["items"][0]
            assert again["status"] == "updated" and again["record"]["id"] == contact_ids[0], again

            deal = ok(
                await session.call_tool(
                    "create_deals",
                    {
                        "deals": [
                            {
                                "name": "Globex doomsday device",
                                "value": "25000.00",
                                "currency": "USD",
                                "company_id": company_id,
                                "contact_ids": contact_ids,
                            }
                        ],
                        "idempotency_key": f"deal-{suffix}",
                    },
                )
            )["items"][0]
            assert (deal["pipeline"], deal["stage"], deal["status"]) == ("sales", "lead", "open"), deal
            assert deal["value"] == "25000.00"
            won = ok(await session.call_tool("update_deals", {"deals": [{"id": deal["id"], "stage": "won"}]}))["items"][0]
            assert won["status"] == "won", won

            task = ok(
                await session.call_tool(
                    "create_tasks",
                    {"tasks": [{"title": "Send the contract", "due_at": "2027-01-15T09:00:00Z", "record": {"entity": "deal", "id": deal["id"]}}]},
                )
            )["items"][0]
            assert task["status"] == "open"
            ok(
                await session.call_tool(
                    "add_notes",
                    {"notes": [{"body": "Signed on a *handshake*.", "record": {"entity": "deal", "id": deal["id"]}}]},
                )
            )
            grouped = ok(await session.call_tool("count_records", {"entity": "deal", "group_by": "status"}))
            won_group = next(g for g in grouped["groups"] if g["value"] == "won")
            assert won_group["sum"]["USD"] == "25000.00", grouped

            timeline = ok(await session.call_tool("get_timeline", {"entity": "deal", "id": deal["id"]}))["items"]
            actions = [(e["entity"], e["action"]) for e in timeline]
            assert actions == [("note", "created"), ("task", "created"), ("deal", "updated"), ("deal", "created")], actions
            assert timeline[2]["changes"]["stage"] == {"before": "lead", "after": "won"}
            assert timeline[2]["actor"]["type"] == "key"

            got = ok(await session.call_tool("get_records", {"records": [{"entity": "deal", "id": deal["id"]}]}))
            assert got["items"][0]["notes"][0]["body"] == "Signed on a *handshake*.", got
            assert got["missing"] == []


async def test_an_agents_run_is_previewed_held_and_undone() -> None:
    """Oversight (SPEC 12) as the SDK meets it: a dry run writes nothing, every change names
    the call that made it, a key whose deletes wait for a person gets a held call it can
    follow, and the run is undone by its request id."""
    name = f"Py{secrets.token_hex(3)}"
    base = URL.removesuffix("/api/v1/mcp")

    async def named(session: ClientSession) -> list[str]:
        found = ok(await session.call_tool(
            "search_records", {"entity": "contact", "filters": [{"field": "first_name", "op": "eq", "value": name}]}
        ))
        return [c["id"] for c in found["items"]]

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with initialized_session() as session, http_client(KEY) as http:
            two = {"contacts": [{"first_name": name, "last_name": "One"}, {"first_name": name, "last_name": "Two"}]}
            preview = ok(await session.call_tool("create_contacts", {**two, "dry_run": True}))
            assert preview["dry_run"] is True and len(preview["changes"]) == 2, preview
            assert await named(session) == [], "a dry run writes nothing"

            created = ok(await session.call_tool("create_contacts", two))
            ids = sorted(c["id"] for c in created["items"])
            log = (await http.get(f"{base}/api/v1/changes", params={"tool": "create_contacts", "limit": 50})).json()
            mine = [c for c in log["items"] if c["record_id"] in ids]
            assert len(mine) == 2, log
            vias = {(c["via"]["route"], c["via"]["tool"], c["via"]["request_id"]) for c in mine}
            assert len(vias) == 1, f"one call, one request id: {vias}"
            request_id = next(iter(vias))[2]
            # A handshake-era client names itself per call only by its User-Agent.
            assert mine[0]["via"]["client"]["name"].startswith("python-httpx"), mine[0]

            # A key whose deletes wait: the call is held, and the agent follows it.
            made = await http.post(f"{base}/api/v1/keys", json={
                "name": f"careful {name}", "role": "admin", "approval": {"kinds": ["delete"]},
            })
            assert made.status_code == 201, made.text
            async with http_client(made.json()["key"]) as careful_http:
                async with streamable_http_client(URL, http_client=careful_http) as (read, write):
                    async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as careful:
                        await careful.initialize()
                        await careful.list_tools()
                        held = ok(await careful.call_tool("delete_records", {"entity": "contact", "ids": ids}))
                        assert held["status"] == "pending_approval", held
                        assert held["summary"].startswith("delete_records"), held
                        status = ok(await careful.call_tool("get_approval", {"approval_id": held["approval_id"]}))
                        assert status["status"] == "pending", status
            assert sorted(await named(session)) == ids, "a held call deletes nothing"

            # The run, undone by its request id: previewed, then done.
            look = ok(await session.call_tool("revert_changes", {"request_id": request_id, "dry_run": True}))
            assert len(look["changes"]) == 2, look
            assert sorted(await named(session)) == ids
            ok(await session.call_tool("revert_changes", {"request_id": request_id}))
            assert await named(session) == []


async def test_unknown_filter_field_is_tool_error() -> None:
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with initialized_session() as session:
            text = await call_expecting_tool_error(
                session,
                "search_records",
                {"entity": "contact", "filters": [{"field": "no_such_field", "op": "eq", "value": "x"}]},
            )
    # The message must tell the model what it may use instead.
    for valid in ("email", "first_name"):
        assert valid in text, f"error does not list valid fields (no {valid!r}): {text!r}"


async def test_unknown_argument_is_tool_error() -> None:
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with initialized_session() as session:
            text = await call_expecting_tool_error(session, "search_records", {"entity": "contact", "bogus": 1})
    assert "bogus" in text, f"error does not name the unknown argument: {text!r}"


# --------------------------------------------------------------------------- (b) auto mode


async def test_auto_mode_get_workspace() -> None:
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with http_client(KEY) as http:
            transport = streamable_http_client(URL, http_client=http)
            async with Client(transport, mode="auto", read_timeout_seconds=READ_TIMEOUT_S) as client:
                version = client.protocol_version
                names = {t.name for t in (await client.list_tools()).tools}
                ws = ok(await client.call_tool("get_workspace", {}))

    assert version == LATEST_MODERN_VERSION, (
        f"auto mode negotiated {version!r}: the server/discover probe for {LATEST_MODERN_VERSION} "
        "did not succeed and the client fell back to initialize"
    )
    assert REQUIRED_TOOLS["lean"] <= names, f"missing tools: {sorted(REQUIRED_TOOLS['lean'] - names)}"
    assert ws.get("organization", {}).get("name") == "default", f"get_workspace: {ws!r}"
    assert ws["organization"].get("id"), "organization has no id"
    for field in ("user", "key", "scopes", "limits", "counts"):
        assert field in ws, f"get_workspace lacks {field!r}: {sorted(ws)}"
    assert isinstance(ws["scopes"], list) and "contacts:read" in ws["scopes"], f"scopes: {ws['scopes']!r}"


# --------------------------------------------------------------------------- (c) wrong key


@pytest.mark.parametrize(
    "key",
    [make_key(), "rpk_not-a-real-key", None],
    ids=["unknown-key", "malformed-key", "no-key"],
)
async def test_wrong_key_handshake_fails_fast(key: str | None) -> None:
    statuses: list[int] = []

    async def connect() -> None:
        async with handshake_session(key, statuses) as session:
            await session.initialize()

    err = await expect_mcp_error(connect)
    assert 401 in statuses, f"expected an HTTP 401, saw statuses {statuses} ({err.message})"


async def test_wrong_key_auto_mode_fails_fast() -> None:
    statuses: list[int] = []

    async def connect() -> None:
        async with http_client(make_key(), statuses) as http:
            async with Client(streamable_http_client(URL, http_client=http), mode="auto"):
                pass

    err = await expect_mcp_error(connect)
    assert statuses and all(s == 401 for s in statuses), f"expected only 401s, saw {statuses} ({err.message})"


@pytest.mark.parametrize(
    ("key", "code"),
    [(make_key(), "invalid_api_key"), ("rpk_not-a-real-key", "malformed_api_key"), (None, "missing_api_key")],
    ids=["unknown-key", "malformed-key", "no-key"],
)
async def test_wrong_key_http_answer(key: str | None, code: str) -> None:
    """SPEC 4: 401, WWW-Authenticate: Bearer realm="rapport", {"error":{"code","message"}}."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1],
            "capabilities": {},
            "clientInfo": {"name": "rapport-py-e2e", "version": "0"},
        },
    }
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with http_client(key) as http:
            r = await http.post(URL, json=body, headers={"accept": "application/json, text/event-stream"})
    assert r.status_code == 401, f"status {r.status_code}: {r.text[:300]}"
    assert r.headers.get("www-authenticate") == 'Bearer realm="rapport"', r.headers.get("www-authenticate")
    err = r.json().get("error", {})
    assert err.get("code") == code, f"error body: {r.text[:300]}"
    assert err.get("message"), f"error body has no message: {r.text[:300]}"


async def test_resources_prompts_and_completion() -> None:
    """SPEC 5: what clients that show resources and prompts read, through the SDK's own calls."""
    name = f"Res{secrets.token_hex(3)}"
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with handshake_session() as session:
            init_caps = (await session.initialize()).capabilities
            await session.list_tools()
            assert init_caps.resources is not None and init_caps.prompts is not None
            assert init_caps.completions is not None, "the completions capability is declared"
            made = ok(await session.call_tool("create_companies", {"companies": [{"name": name, "domain": f"{name.lower()}.example"}]}))
            company_id = made["items"][0]["id"]

            templates = (await session.list_resource_templates()).resource_templates
            assert {t.uri_template for t in templates} == {"rapport://{entity}/{id}", "rapport://schema/{entity}"}
            listed = {str(r.uri) for r in (await session.list_resources()).resources}
            assert "rapport://schema/company" in listed, listed
            read = await session.read_resource(f"rapport://company/{company_id}")
            record = json.loads(read.contents[0].text)
            assert record["name"] == name, record
            schema = json.loads((await session.read_resource("rapport://schema/deal")).contents[0].text)
            assert any(p["name"] == "sales" for p in schema["pipelines"]), schema
            with pytest.raises(MCPError):
                await session.read_resource("rapport://company/no-such-id")

            prompts = {p.name for p in (await session.list_prompts()).prompts}
            assert {"daily_briefing", "log_interaction", "pipeline_review", "account_brief"} <= prompts
            brief = await session.get_prompt("account_brief", {"company": name})
            text = brief.messages[0].content.text
            assert company_id in text and "get_records" in text, text

            done = await session.complete(
                PromptReference(type="ref/prompt", name="account_brief"), {"name": "company", "value": name[:5]}
            )
            assert name in done.completion.values, done
