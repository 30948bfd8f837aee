"""The web console in a real browser: Debian's Chromium driven by Playwright.

Run by tests/browser/run.sh, which starts a fresh `rapport serve` and exports:

    RAPPORT_BASE        http://HOST:PORT
    RAPPORT_SETUP_LINK  the one-time setup link `serve` printed
    RAPPORT_BIN         the server binary (for the CLI steps)
    CHROMIUM            the browser executable
    AXE_JS              axe-core's axe.min.js
    SCREENSHOTS         where to write the screenshots (docs/console when refreshing them)

The tests share one server and run in file order: the first sets the owner's password.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

BASE = os.environ.get("RAPPORT_BASE", "")
SETUP_LINK = os.environ.get("RAPPORT_SETUP_LINK", "")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE_JS = os.environ.get("AXE_JS", "")
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS", "target/console-screenshots"))
AXE_SOURCE = Path(AXE_JS).read_text() if AXE_JS else ""
PASSWORD = "correct horse battery staple"
CLIENTS = ["Claude Code", "Codex", "VS Code", "Cursor", "Gemini CLI", "Windsurf", "Claude Desktop", "ChatGPT"]

pytestmark = pytest.mark.skipif(not BASE or not SETUP_LINK, reason="run through tests/browser/run.sh")

STATE: dict[str, object] = {}


@pytest.fixture(scope="module")
def browser() -> Browser:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def new_context(browser: Browser, **kw) -> BrowserContext:
    ctx = browser.new_context(base_url=BASE, permissions=["clipboard-read", "clipboard-write"], **kw)
    ctx.set_default_timeout(15_000)
    return ctx


@pytest.fixture
def owner(browser: Browser) -> Page:
    """A page logged in as the owner (after test_setup has run)."""
    assert "owner_state" in STATE, "test_setup_link_sets_the_password must run first"
    ctx = new_context(browser, storage_state=STATE["owner_state"])
    page = ctx.new_page()
    yield page
    ctx.close()


def mcp(page: Page, key: str, method: str, params: dict | None = None):
    """One stateless MCP request with `key`, through the browser's own HTTP stack."""
    return page.request.post(
        f"{BASE}/api/v1/mcp",
        headers={
            "x-api-key": key,
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-06-18",
        },
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}),
    )


def tools_list_ok(page: Page, key: str) -> bool:
    r = mcp(page, key, "tools/list")
    return r.status == 200 and any(t["name"] == "get_workspace" for t in r.json()["result"]["tools"])


def check_a11y(page: Page, what: str) -> None:
    """axe-core injected into the page: no serious or critical violations."""
    # Evaluated through the DevTools protocol, so the page's own CSP stays in force.
    page.evaluate(AXE_SOURCE)
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations on {what}:\n" + "\n".join(bad)


def no_horizontal_scroll(page: Page, what: str) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, f"{what} scrolls sideways: {width[0]} px of content in {width[1]} px"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def audit_actions(page: Page) -> list[str]:
    page.goto("/settings/audit")
    return page.locator("table.audit tbody tr td:nth-child(3)").all_inner_texts()


# ----------------------------------------------------------------------------------- tests


def test_setup_link_sets_the_password(browser: Browser) -> None:
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto(SETUP_LINK)
    expect(page.get_by_role("heading", name="Set up Rapport")).to_be_visible()
    check_a11y(page, "the setup page")
    # Two different passwords are refused, and nothing is spent.
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Type it again").fill(PASSWORD + "!")
    page.get_by_role("button", name="Set password and log in").click()
    expect(page.get_by_role("alert")).to_contain_text("differ")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Type it again").fill(PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()
    expect(page).to_have_url(re.compile(r"/settings/keys$"))
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
    STATE["owner_state"] = ctx.storage_state()
    ctx.close()

    # The link works once.
    ctx = new_context(browser)
    page = ctx.new_page()
    response = page.goto(SETUP_LINK)
    assert response.status == 410
    expect(page.get_by_text("setup-link")).to_be_visible()
    ctx.close()


def test_login_logout_and_wrong_password(browser: Browser) -> None:
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto("/settings/keys")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    check_a11y(page, "the login page")
    page.get_by_label("Email").fill("owner@localhost")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/settings/keys$"))
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    # The ended session opens nothing.
    page.goto("/settings/keys")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    ctx.close()


def test_key_lifecycle_in_the_console(owner: Page) -> None:
    page = owner
    page.goto("/settings/keys")
    expect(page.get_by_text("No enabled keys.")).to_be_visible()
    check_a11y(page, "the keys page (empty)")

    # Keyboard only: reach "Create key", open the dialog, type, submit.
    create = page.get_by_role("link", name="Create key")
    create.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Create an API key")
    expect(dialog).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    check_a11y(page, "the create dialog")
    page.keyboard.type("Claude Code on the laptop")
    page.get_by_label("Access").select_option("member")
    page.get_by_label("Expires").select_option("30")
    shot(page, "create-dialog")
    page.get_by_role("button", name="Create key").click()

    revealed = page.get_by_role("dialog", name=re.compile("created"))
    expect(revealed).to_be_visible()
    key = page.locator("#new-key").inner_text().strip()
    assert re.fullmatch(r"rpk_[0-9A-Za-z]{64}", key), key
    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == key

    # The connect card: a tab per client, each with the key in it; Cursor's a real link.
    tabs = page.get_by_role("tab")
    assert tabs.all_inner_texts() == CLIENTS
    for name in CLIENTS:
        page.get_by_role("tab", name=name, exact=True).click()
        panel = page.get_by_role("tabpanel", name=name, exact=True)
        expect(panel).to_be_visible()
        if name != "Cursor":  # Cursor's link carries the key base64-encoded
            expect(panel.locator("pre").first).to_contain_text(key)
    page.get_by_role("tab", name="Cursor", exact=True).click()
    add = page.get_by_role("link", name="Add to Cursor")
    expect(add).to_have_attribute("href", re.compile(r"^cursor://anysphere\.cursor-deeplink/mcp/install\?name=rapport&config="))
    page.get_by_role("tab", name="Claude Code", exact=True).click()
    page.get_by_role("button", name="Copy the Claude Code setup").click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("claude mcp add --transport http rapport ") and key in copied
    check_a11y(page, "the new key with the connect card")
    shot(page, "connect-card")

    # That key answers tools/list.
    assert tools_list_ok(page, key)
    page.get_by_role("button", name=re.compile("Done")).click()
    card = page.locator("li.key-card", has_text="rpk_")
    expect(card.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    expect(card).to_contain_text("Role: member")
    check_a11y(page, "the keys page")
    shot(page, "keys")

    # Disable: refused at once. Enable: works again.
    card.get_by_role("switch").click()
    expect(page.get_by_role("status")).to_contain_text("Disabled")
    expect(page.get_by_role("heading", name=re.compile("Disabled keys"))).to_be_visible()
    r = mcp(page, key, "tools/list")
    assert r.status == 401 and r.json()["error"]["code"] == "api_key_disabled"
    page.locator("li.key-card", has_text="rpk_").get_by_role("switch").click()
    expect(page.get_by_role("status")).to_contain_text("Enabled")
    assert tools_list_ok(page, key)

    # Rename inline.
    name_box = page.get_by_label(re.compile("Name of key"))
    name_box.fill("Claude Code (laptop)")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_contain_text("Claude Code (laptop)")

    # Rotate without grace: the old secret is refused, the new one works.
    page.get_by_role("link", name="Rotate Claude Code (laptop)").click()
    check_a11y(page, "the rotate page")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("dialog", name=re.compile("rotated"))).to_be_visible()
    new_key = page.locator("#new-key").inner_text().strip()
    assert new_key != key
    assert mcp(page, key, "tools/list").status == 401
    assert tools_list_ok(page, new_key)
    page.get_by_role("button", name=re.compile("Done")).click()

    # Delete: used a moment ago, so the page warns and asks again.
    page.get_by_role("link", name="Delete Claude Code (laptop)").click()
    expect(page.get_by_role("alert")).to_contain_text("This key was used")
    check_a11y(page, "the delete page")
    page.get_by_role("button", name="Delete it anyway").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted")
    assert mcp(page, new_key, "tools/list").status == 401

    # The audit log shows each step, by this person.
    actions = audit_actions(page)
    for a in ["key.create", "key.disable", "key.enable", "key.rename", "key.rotate", "key.delete"]:
        assert a in actions, (a, actions)
    expect(page.locator("table.audit tbody tr", has_text="key.rotate")).to_contain_text("owner@localhost")
    check_a11y(page, "the audit log")
    page.get_by_label("Action").select_option("key.disable")
    page.get_by_role("button", name="Filter").click()
    assert audit_actions_on_page(page) == ["key.disable"]


def audit_actions_on_page(page: Page) -> list[str]:
    return page.locator("table.audit tbody tr td:nth-child(3)").all_inner_texts()


def test_forged_posts_are_refused(owner: Page) -> None:
    page = owner
    page.goto("/settings/keys")
    before = page.locator("li.key-card").count()
    # Same cookies, no token: what a cross-site form would send.
    r = page.request.post(f"{BASE}/settings/keys", form={"name": "forged", "role": "member"})
    assert r.status == 403 and "CSRF" in r.text()
    r = page.request.post(f"{BASE}/settings/keys", form={"name": "forged", "role": "member", "csrf": "x" * 43})
    assert r.status == 403
    page.reload()
    assert page.locator("li.key-card").count() == before
    r = page.request.post(f"{BASE}/settings/webhooks", form={"url": "http://127.0.0.1:9/forged", "events": "*"})
    assert r.status == 403 and "CSRF" in r.text()
    page.goto("/settings/webhooks")
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
    # The import upload and the erasure too.
    r = page.request.post(f"{BASE}/imports", multipart={
        "entity": "contacts",
        "file": {"name": "f.csv", "mimeType": "text/csv", "buffer": b"First Name,Email\nFor,ged@example.com\n"}})
    assert r.status == 403, r.status
    r = page.request.post(f"{BASE}/settings/privacy/erase", form={"email": "a@b.example", "confirm": "a@b.example"})
    assert r.status == 403 and "CSRF" in r.text()
    page.goto("/imports")
    expect(page.get_by_text("No imports yet.")).to_be_visible()
    # A session cookie opens no API route.
    r = page.request.get(f"{BASE}/api/v1/keys")
    assert r.status == 401


def test_agent_writes_show_on_activity_and_the_record(owner: Page) -> None:
    page = owner
    page.goto("/settings/keys")
    page.get_by_role("button", name="Connect an agent").click()
    expect(page.get_by_role("dialog", name="Connect an agent")).to_be_visible()
    key = page.locator("#new-key").inner_text().strip()
    assert len(page.get_by_role("tab").all()) == len(CLIENTS)
    r = mcp(page, key, "tools/call", {
        "name": "create_companies",
        "arguments": {"companies": [{"name": "Acme Robotics", "domain": "acme-robotics.example"}]},
    })
    assert r.status == 200, r.text()
    company_id = r.json()["result"]["structuredContent"]["items"][0]["id"]
    r = mcp(page, key, "tools/call", {
        "name": "create_contacts",
        "arguments": {"contacts": [{"first_name": "Ada", "last_name": "Quist", "email": "ada@acme-robotics.example",
                                    "title": "CTO", "company_id": company_id}]},
    })
    assert r.status == 200, r.text()
    contact_id = r.json()["result"]["structuredContent"]["items"][0]["id"]
    r = mcp(page, key, "tools/call", {
        "name": "update_contacts",
        "arguments": {"contacts": [{"id": contact_id, "title": "CEO"}]},
    })
    assert r.status == 200, r.text()

    page.goto("/activity")
    entry = page.locator("li.entry", has_text="updated").first
    expect(entry).to_contain_text("CTO")
    expect(entry).to_contain_text("CEO")
    check_a11y(page, "the activity page")
    shot(page, "activity")
    # Filter by entity: companies only.
    page.get_by_label("Records").select_option("company")
    page.get_by_role("button", name="Filter").click()
    entries = page.locator("li.entry").all_inner_texts()
    assert entries and all("company" in e for e in entries), entries
    page.goto("/activity")
    page.locator("li.entry", has_text="updated").first.get_by_role("link", name="Ada Quist").click()
    expect(page.get_by_role("heading", name="Ada Quist", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Acme Robotics")).to_be_visible()
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    expect(timeline).to_contain_text("CEO")
    expect(timeline).to_contain_text("created")
    check_a11y(page, "a record page")
    shot(page, "record")

    # The records list finds it by a piece of its name.
    page.goto("/records/contacts")
    page.get_by_label("Search contacts").fill("quis")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Ada Quist")).to_be_visible()
    check_a11y(page, "the records list")
    page.get_by_label("Search contacts").fill("zzznothing")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No contacts match")).to_be_visible()


def test_activities_are_listed_and_shown_on_the_records_they_are_about(owner: Page) -> None:
    page = owner
    page.goto("/settings/keys")
    page.get_by_role("button", name="Connect an agent").click()
    key = page.locator("#new-key").inner_text().strip()
    headers = {"x-api-key": key, "content-type": "application/json"}
    r = page.request.post(f"{BASE}/api/v1/contacts", headers=headers,
                          data=json.dumps({"first_name": "Lin", "last_name": "Okafor", "email": "lin@okafor.example"}))
    assert r.status == 201, r.text()
    contact = r.json()["id"]
    # One through REST, one through MCP (the lean profile's write_records).
    r = page.request.post(f"{BASE}/api/v1/activities", headers=headers, data=json.dumps({
        "kind": "call", "subject": "Pricing call with Lin", "outcome": "connected", "duration_minutes": 25,
        "record": {"entity": "contact", "id": contact}}))
    assert r.status == 201, r.text()
    call = r.json()["id"]
    r = mcp(page, key, "tools/call", {"name": "write_records", "arguments": {"entity": "activity", "mode": "create", "items": [
        {"kind": "meeting", "subject": "Onsite demo", "outcome": "held", "occurred_at": "2026-11-02T10:00:00Z",
         "record": {"entity": "contact", "id": contact}, "participant_ids": [contact]}]}})
    assert r.status == 200 and not r.json()["result"].get("isError"), r.text()

    page.goto("/records/activities")
    table = page.locator("main table")
    expect(table).to_contain_text("Pricing call with Lin")
    expect(table).to_contain_text("Onsite demo")
    check_a11y(page, "the activities list")
    page.get_by_label("Search activities").fill("pricing")
    page.get_by_role("button", name="Search").click()
    expect(table).to_contain_text("Pricing call with Lin")
    expect(table).not_to_contain_text("Onsite demo")
    table.locator(f'a[href="/records/activities/{call}"]').click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pricing call with Lin")
    fields = page.locator("section", has=page.get_by_role("heading", name="Fields"))
    expect(fields).to_contain_text("connected")
    check_a11y(page, "an activity's page")
    # The contact it is about: its last activity set, both activities on its timeline.
    fields.locator(f'a[href="/records/contacts/{contact}"]').first.click()
    expect(page.get_by_role("heading", name="Lin Okafor", level=1)).to_be_visible()
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    expect(timeline).to_contain_text("Pricing call with Lin")
    expect(timeline).to_contain_text("Onsite demo")
    last = page.locator("section", has=page.get_by_role("heading", name="Fields")).locator("div", has_text="last activity")
    expect(last.locator("dd")).not_to_be_empty()


def contacts_named(page: Page, text: str) -> list[str]:
    page.goto(f"/records/contacts?q={text}")
    return page.locator("main table tbody td:first-child a").all_inner_texts()


def test_an_agents_run_is_previewed_and_undone_from_activity(owner: Page) -> None:
    page = owner
    page.goto("/settings/keys")
    page.get_by_role("button", name="Connect an agent").click()
    key = page.locator("#new-key").inner_text().strip()
    r = mcp(page, key, "tools/call", {
        "name": "create_contacts",
        "arguments": {"contacts": [{"first_name": "Oops", "last_name": "One"}, {"first_name": "Oops", "last_name": "Two"}]},
    })
    assert r.status == 200, r.text()
    assert len(contacts_named(page, "oops")) == 2

    # Undo on the run opens its preview, which writes nothing.
    page.goto("/activity")
    page.get_by_role("link", name="Undo the 2 changes of this call").click()
    expect(page.get_by_role("heading", name="Undo one call", level=1)).to_be_visible()
    preview = page.get_by_role("list", name="What the undo writes")
    expect(preview.locator("li.entry")).to_have_count(2)
    expect(preview).to_contain_text("deleted contact")
    check_a11y(page, "the undo preview")
    shot(page, "undo")
    url = page.url
    assert len(contacts_named(page, "oops")) == 2, "the preview wrote nothing"

    # Confirmed: the run is undone, and the undo shows as a run of its own.
    page.goto(url)
    page.get_by_role("button", name="Undo 2 changes").click()
    expect(page.get_by_text("Undid 2 change(s).")).to_be_visible()
    expect(page.locator("li.entry").first).to_contain_text("an undo")
    assert contacts_named(page, "oops") == []

    # The undo is undone in turn, from a single change this time.
    page.goto("/activity?tool=revert_changes")
    page.get_by_role("link", name="Undo this change").first.click()
    expect(page.get_by_role("list", name="What the undo writes")).to_contain_text("restored contact")
    page.get_by_role("button", name="Undo 1 change").click()
    expect(page.get_by_text("Undid 1 change(s).")).to_be_visible()
    assert len(contacts_named(page, "oops")) == 1


def test_a_held_delete_waits_for_a_person_who_denies_then_approves_it(owner: Page) -> None:
    page = owner
    # A key whose deletes wait for a person, made in the create dialog.
    page.goto("/settings/keys")
    page.get_by_role("link", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create an API key")
    dialog.get_by_label("Name", exact=True).fill("Careful agent")
    dialog.get_by_label("Access").select_option("admin")
    dialog.get_by_label("Deletes and merges").check()
    dialog.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    page.goto("/settings/keys")
    card = page.locator("li.key-card", has_text="Careful agent")
    expect(card).to_contain_text("Waits for a person on: delete")

    r = mcp(page, key, "tools/call", {
        "name": "create_contacts",
        "arguments": {"contacts": [{"first_name": "Held", "last_name": "One"}, {"first_name": "Held", "last_name": "Two"}]},
    })
    ids = [c["id"] for c in r.json()["result"]["structuredContent"]["items"]]

    def ask() -> str:
        r = mcp(page, key, "tools/call", {"name": "delete_records", "arguments": {"entity": "contact", "ids": ids}})
        held = r.json()["result"]["structuredContent"]
        assert held["status"] == "pending_approval", held
        return held["approval_id"]

    def status(approval: str) -> dict:
        r = mcp(page, key, "tools/call", {"name": "get_approval", "arguments": {"approval_id": approval}})
        return r.json()["result"]["structuredContent"]

    first = ask()
    assert len(contacts_named(page, "held")) == 2, "a held call writes nothing"

    # The navigation counts it; the page shows what it would change and asks for a reason to deny.
    page.goto("/activity")
    page.get_by_role("link", name=re.compile(r"Approvals\s+1 waiting")).click()
    card = page.locator("article.approval", has_text="delete_records: deleted 2 contacts")
    expect(card).to_contain_text("Careful agent")
    expect(card.get_by_role("list", name=re.compile("What approving"))).to_contain_text("Held One")
    check_a11y(page, "the approvals page")
    shot(page, "approvals")
    card.get_by_label("Reason for denying").fill("keep them until the renewal")
    card.get_by_role("button", name=re.compile("^Deny")).click()
    expect(page.get_by_text("Denied; the agent reads your reason.")).to_be_visible()
    assert status(first)["status"] == "denied"
    assert status(first)["reason"] == "keep them until the renewal"
    assert len(contacts_named(page, "held")) == 2

    # Asked again and approved: it runs as the key.
    second = ask()
    page.goto("/approvals")
    page.locator(f'article[data-approval="{second}"]').get_by_role("button", name=re.compile("^Approve")).click()
    expect(page.get_by_text("Approved: delete_records ran as its key.")).to_be_visible()
    expect(page.locator("nav .nav-count")).to_have_count(0)
    assert status(second)["status"] == "approved"
    assert contacts_named(page, "held") == []


class Receiver:
    """A webhook receiver on 127.0.0.1 (Python's http.server in a thread): keeps each
    request's headers and raw body, answers 200 with a short JSON body."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = b'{"received": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: v1 HMAC-SHA256 of `id.timestamp.body`, keyed with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s, expected) for s in headers["webhook-signature"].split(" "))


def attempts_until(page: Page, path: str, deliveries: int, attempts: int, seconds: float = 15) -> None:
    """Opens the endpoint's page at `path` until it lists `deliveries`, the newest with
    `attempts` (a GET each time: reloading a page a form answered would post it again)."""
    listed = page.locator("li.delivery")
    rows = listed.first.locator("table.attempts tbody tr")
    deadline = time.monotonic() + seconds
    page.goto(path)
    while (listed.count(), rows.count()) != (deliveries, attempts) and time.monotonic() < deadline:
        time.sleep(0.5)
        page.goto(path)
    assert (listed.count(), rows.count()) == (deliveries, attempts), \
        f"expected {deliveries} deliveries, the newest with {attempts} attempts: {listed.all_inner_texts()}"


def test_webhooks_in_the_console(owner: Page) -> None:
    page = owner
    receiver = Receiver()
    try:
        page.goto("/settings/keys")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
        expect(page).to_have_url(re.compile(r"/settings/webhooks$"))
        expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
        expect(page.get_by_text("No webhooks yet.")).to_be_visible()
        check_a11y(page, "the webhooks page (empty)")

        # A pattern that is not one: refused, with the message and what was typed.
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_label("Events").fill("contact.*, deal.exploded")
        page.get_by_label("Description").fill("Browser receiver")
        page.get_by_role("button", name="Create webhook").click()
        expect(page.get_by_role("alert")).to_contain_text("`deal.exploded` is not an event pattern")
        expect(page.get_by_label("URL")).to_have_value(receiver.url)
        expect(page.get_by_label("Description")).to_have_value("Browser receiver")
        expect(page.get_by_label("Events")).to_have_attribute("aria-invalid", "true")
        check_a11y(page, "the refused create form")

        page.get_by_label("Events").fill("contact.* deal.*, *.deleted")
        expect(page.get_by_label("Enabled")).to_be_checked()
        page.get_by_role("button", name="Create webhook").click()
        dialog = page.get_by_role("dialog", name="Webhook created")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("you will not see it again")
        for header in ["webhook-id", "webhook-timestamp", "webhook-signature"]:
            expect(dialog).to_contain_text(header)
        secret = page.locator("#new-secret").inner_text().strip()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{32,}", secret), secret
        page.get_by_role("button", name="Copy secret").click()
        expect(page.get_by_role("button", name="Copied", exact=True)).to_be_visible()
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied == secret
        check_a11y(page, "the new webhook's secret")
        shot(page, "webhook-secret")
        page.get_by_role("button", name=re.compile("Done")).click()
        card = page.locator("li.key-card", has_text=receiver.url)
        expect(card).to_contain_text("Browser receiver")
        expect(card).to_contain_text("*.deleted")
        expect(card).to_contain_text("Enabled")
        check_a11y(page, "the webhooks page")
        shot(page, "webhooks")
        # Shown once: never again on the list (opened afresh: a reload would post the form again).
        page.goto("/settings/webhooks")
        assert secret not in page.content() and "whsec_" not in page.content()

        # A contact created over REST with a key is delivered, signed with the copied secret.
        binary = os.environ["RAPPORT_BIN"]
        out = subprocess.run([binary, "keys", "create", "--name", "webhook test", "--role", "member", "--json"],
                             check=True, capture_output=True, text=True, env=os.environ)
        key = json.loads(out.stdout)["key"]
        r = page.request.post(f"{BASE}/api/v1/contacts", headers={"x-api-key": key},
                              data={"first_name": "Wanda", "last_name": "Hook"})
        assert r.status == 201, r.text()
        contact_id = r.json()["id"]

        card.get_by_role("link", name=receiver.url, exact=True).click()
        expect(page.get_by_role("heading", name="Browser receiver", level=1)).to_be_visible()
        endpoint = urlparse(page.url).path
        assert re.fullmatch(r"/settings/webhooks/wh_[0-9a-f]+", endpoint), endpoint
        attempts_until(page, endpoint, 1, 1)
        delivery = page.locator("li.delivery").first
        expect(delivery).to_contain_text("contact.created")
        expect(delivery).to_contain_text("delivered")
        expect(delivery.locator("table.attempts")).to_contain_text("HTTP 200")
        expect(delivery.get_by_role("link", name=contact_id)).to_have_attribute("href", f"/records/contacts/{contact_id}")
        delivery.get_by_text("First 1 KB").click()
        expect(delivery.locator("details pre")).to_contain_text('{"received": true}')
        assert len(receiver.got) == 1
        headers, body = receiver.got[0]
        assert signed_with(secret, headers, body)
        assert json.loads(body)["type"] == "contact.created"
        check_a11y(page, "the webhook's page with a delivery")
        shot(page, "webhook")

        # Resend: a second attempt of the same delivery (the same webhook-id).
        delivery.get_by_role("button", name=re.compile("^Resend")).click()
        expect(page.get_by_role("status")).to_contain_text("again now")
        attempts_until(page, endpoint, 1, 2)
        assert len(receiver.got) == 2
        assert receiver.got[1][0]["webhook-id"] == headers["webhook-id"]

        # Edit: the description changes, the switch goes off.
        page.get_by_label("Description").fill("Browser receiver (paused)")
        page.get_by_label("Enabled").uncheck()
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_contain_text("disabled")
        expect(page.get_by_role("heading", name="Browser receiver (paused)", level=1)).to_be_visible()
        page.get_by_label("Enabled").check()
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_contain_text("enabled")

        # Rotate: a confirm page, then the new secret once; the old one still signs for 24 hours.
        page.get_by_role("link", name="Rotate secret", exact=True).click()
        expect(page.get_by_role("heading", name="Rotate the signing secret")).to_be_visible()
        check_a11y(page, "the rotate page")
        page.get_by_role("button", name="Rotate secret").click()
        dialog = page.get_by_role("dialog", name="Signing secret rotated")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("keeps working for 24 hours")
        rotated = page.locator("#new-secret").inner_text().strip()
        assert rotated.startswith("whsec_") and rotated != secret
        page.get_by_role("button", name=re.compile("Done")).click()
        expect(page.get_by_text("Also signs until")).to_be_visible()
        r = page.request.post(f"{BASE}/api/v1/contacts", headers={"x-api-key": key}, data={"first_name": "Rita"})
        assert r.status == 201, r.text()
        attempts_until(page, endpoint, 2, 1)
        headers, body = receiver.got[-1]
        assert signed_with(rotated, headers, body) and signed_with(secret, headers, body)

        # Delete: a confirm page, then gone.
        page.get_by_role("link", name="Delete webhook").click()
        check_a11y(page, "the delete page")
        page.get_by_role("button", name="Delete webhook").click()
        expect(page).to_have_url(re.compile(r"/settings/webhooks$"))
        expect(page.get_by_role("status")).to_contain_text("Deleted the webhook")
        expect(page.get_by_text("No webhooks yet.")).to_be_visible()

        actions = audit_actions(page)
        for a in ["webhook.create", "webhook.update", "webhook.resend", "webhook.delete"]:
            assert a in actions, (a, actions)
    finally:
        receiver.close()


# ------------------------------------------------------------------ import, export, personal data

# A HubSpot-style export as a European spreadsheet saves it: a byte order mark, semicolons,
# CRLF line ends, quoted cells with a `;` and a line break in them, a cell a spreadsheet
# would run as a formula, a bad email and a row with too few cells.
HUBSPOT_CSV = (
    "\ufeffFirst Name;Last Name;E-mail Address;Company Name;Phone Number;Job Title;Lifecycle Stage\r\n"
    "Grace;Hopper;grace@navylabs.example;Navy Labs;+1 555 0100;\"Rear Admiral; retired\";customer\r\n"
    "Alan;Turing;alan@bletchley.example;Bletchley Park;+44 20 7946 0000;\"Mathematician\r\nCodebreaker\";lead\r\n"
    "Katherine;Johnson;katherine@langley.example;\"Langley; NASA\";;=SUM(A1:A2);customer\r\n"
    "Broken;Mail;not-an-email;Navy Labs;;;lead\r\n"
    "Ragged;Row;ragged@example.com\r\n"
    "Mary;Jackson;mary@langley.example;\"Langley; NASA\";;Engineer;evangelist\r\n"
).encode()
IMPORTED = ["Grace Hopper", "Alan Turing", "Katherine Johnson", "Mary Jackson"]


def upload(page: Page, name: str, data: bytes, entity: str = "contacts", mime: str = "text/csv") -> None:
    """The Import page's upload form, filled and sent."""
    page.goto("/imports")
    page.get_by_label("Records", exact=True).select_option(entity)
    page.get_by_label("File", exact=True).set_input_files({"name": name, "mimeType": mime, "buffer": data})
    page.get_by_role("button", name="Upload and preview").click()


def downloaded(page: Page, click) -> tuple[str, bytes]:
    """What clicking `click` (a locator) downloads: its file name and bytes."""
    with page.expect_download() as d:
        click.click()
    download = d.value
    assert download.failure() is None, download.failure()
    return download.suggested_filename, Path(download.path()).read_bytes()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def preview_rows(page: Page) -> dict[str, tuple[str, list[str]]]:
    """The preview's rows by line number: the result column's text and the cells under the
    file's columns (each row as wide as the header, whatever the file's row held)."""
    table = page.get_by_role("region", name=re.compile(r"^(First \d+ rows|The row)$")).locator("table")
    head = table.locator("thead th").all_inner_texts()
    assert [h.lower() for h in head[:2]] == ["line", "result"], head
    out = {}
    for r in table.locator("tbody tr").all():
        cells = r.locator("td").all_inner_texts()
        assert len(cells) == len(head), f"a row of {len(cells)} cells under {len(head)} headers: {cells}"
        out[cells[0].strip()] = (cells[1], cells[2:])
    return out


def test_a_hubspot_export_is_imported_through_the_page(owner: Page) -> None:
    page = owner
    page.goto("/records/contacts")
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/imports\?entity=contacts$"))
    expect(page.get_by_role("heading", name="Import", level=1)).to_be_visible()
    expect(page.get_by_text("No imports yet.")).to_be_visible()
    check_a11y(page, "the import page (empty)")

    upload(page, "hubspot-contacts.csv", HUBSPOT_CSV)
    expect(page.get_by_role("heading", name="Import contacts from hubspot-contacts.csv", level=1)).to_be_visible()
    expect(page.locator(".lede")).to_contain_text("6 rows, CSV separated by semicolons.")
    expect(page.locator(".lede")).to_contain_text("Nothing has been written yet")
    # The header spellings map on their own; the lifecycle stage fills nothing and says so.
    for column, field in [("First Name", "first_name"), ("Last Name", "last_name"), ("E-mail Address", "email"),
                          ("Company Name", "company"), ("Phone Number", "phone"), ("Job Title", "title"),
                          ("Lifecycle Stage", "")]:
        expect(page.get_by_label(column, exact=True)).to_have_value(field)
    expect(page.get_by_text("Left out: Lifecycle Stage")).to_be_visible()
    # The first rows as the import takes them: by the line they start on (a cell's line
    # break counts), the bad ones with why.
    rows = preview_rows(page)
    assert list(rows) == ["2", "3", "5", "6", "7", "8"], rows
    for line in ["2", "3", "5", "8"]:
        assert rows[line][0].strip() == "ok", rows[line]
    assert rows["2"][1][5] == "Rear Admiral; retired" and rows["5"][1][3] == "Langley; NASA", rows
    assert rows["3"][1][5] == "Mathematician\nCodebreaker", rows["3"]
    assert rows["6"][0].startswith("fails") and "email" in rows["6"][0], rows["6"]
    assert rows["7"][0].startswith("fails") and "3 cells where the header has 7 columns" in rows["7"][0], rows["7"]
    assert rows["7"][1] == ["Ragged", "Row", "ragged@example.com", "", "", "", ""], rows["7"]
    expect(page.get_by_text("These rows would give 4 new, 0 updated, 0 skipped and 2 failed")).to_contain_text(
        "3 new companies")
    expect(page.get_by_label("Existing records")).to_have_value("email")
    expect(page.get_by_label("When a row matches one")).to_have_value("skip")
    check_a11y(page, "the import preview")
    shot(page, "import-preview")
    # Nothing is written by a preview (looked at from another tab: this one holds the form).
    other = page.context.new_page()
    assert contacts_named(other, "hopper") == []

    # Two columns on one field: the later is left out, with why, and the other choices stay.
    page.get_by_label("Lifecycle Stage", exact=True).select_option(label="new custom field custom.lifecycle_stage (text)")
    page.get_by_label("Phone Number", exact=True).select_option("email")
    page.get_by_role("button", name="Update the preview").click()
    expect(page.get_by_role("alert")).to_contain_text("“E-mail Address” and “Phone Number” both fill email")
    expect(page.get_by_label("Phone Number", exact=True)).to_have_value("")
    expect(page.get_by_label("E-mail Address", exact=True)).to_have_value("email")
    expect(page.get_by_label("Lifecycle Stage", exact=True)).to_have_value("custom.lifecycle_stage")
    check_a11y(page, "the preview of a refused mapping")
    page.get_by_label("Phone Number", exact=True).select_option("phone")
    page.get_by_label("Lifecycle Stage", exact=True).select_option("")
    page.get_by_role("button", name="Update the preview").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_text("Left out: Lifecycle Stage")).to_be_visible()

    # The left-out column goes to a new custom field; the preview says so, the rest stays.
    stage = page.get_by_label("Lifecycle Stage", exact=True)
    stage.select_option(label="new custom field custom.lifecycle_stage (text)")
    page.get_by_role("button", name="Update the preview").click()
    expect(page).to_have_url(re.compile(r"/imports/preview$"))
    expect(page.get_by_label("Lifecycle Stage", exact=True)).to_have_value("custom.lifecycle_stage")
    expect(page.get_by_label("E-mail Address", exact=True)).to_have_value("email")
    expect(page.get_by_text("Left out:")).to_have_count(0)
    assert list(preview_rows(page)) == ["2", "3", "5", "6", "7", "8"]
    assert contacts_named(other, "hopper") == []
    other.goto("/settings/audit")
    assert not [a for a in audit_actions_on_page(other) if a.startswith("schema")], "no field is created yet"
    other.close()

    page.get_by_role("button", name="Import 6 rows").click()
    expect(page).to_have_url(re.compile(r"/imports/imp_[0-9a-f]+$"))
    import_path = urlparse(page.url).path
    STATE["import_path"] = import_path
    expect(page.get_by_role("heading", name="Import of hubspot-contacts.csv", level=1)).to_be_visible()
    # Followed while it runs; the report once it is done (6 rows: at once, or after a reload).
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    status = page.locator("#import-status")
    expect(status).to_contain_text("Done")
    expect(status).to_contain_text("6 of 6 rows")
    expect(page.locator("#import-bar")).to_have_attribute("value", "6")
    facts = {dt: dd for dt, dd in zip(page.locator(".facts dt").all_inner_texts(), page.locator(".facts dd").all_inner_texts())}
    assert facts == {"Created": "4", "Updated": "0", "Skipped": "0", "Failed": "2", "Companies created": "3"}, facts
    failed = page.locator("table", has=page.get_by_role("columnheader", name="Why")).locator("tbody tr")
    expect(failed).to_have_count(2)
    expect(failed.nth(0)).to_contain_text("6")
    expect(failed.nth(0)).to_contain_text("email")
    expect(failed.nth(1)).to_contain_text("3 cells")
    check_a11y(page, "an import's report")
    shot(page, "import-report")

    # The failed rows download as CSV: the file's columns, then the line and the reason.
    name, data = downloaded(page, page.get_by_role("link", name="Download the 2 failed rows (CSV)"))
    assert name.endswith("-failed-rows.csv"), name
    table = csv_rows(data)
    assert table[0] == ["First Name", "Last Name", "E-mail Address", "Company Name", "Phone Number", "Job Title",
                        "Lifecycle Stage", "line", "error"], table[0]
    assert [r[:3] for r in table[1:]] == [["Broken", "Mail", "not-an-email"], ["Ragged", "Row", "ragged@example.com"]]
    assert [r[7] for r in table[1:]] == ["6", "7"]
    expect(page.get_by_role("link", name="Undo this import")).to_have_attribute(
        "href", re.compile(r"^/activity/undo\?call=req_[0-9a-f]+$"))

    # The contacts are there, with the cells as they were in the file.
    page.goto("/records/contacts")
    for who in IMPORTED:
        expect(page.get_by_role("link", name=who, exact=True)).to_be_visible()
    page.get_by_role("link", name="Grace Hopper", exact=True).click()
    expect(page.get_by_role("heading", name="Grace Hopper", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Rear Admiral; retired")
    expect(page.locator("main")).to_contain_text("customer")
    expect(page.get_by_role("link", name="Navy Labs")).to_be_visible()
    page.goto("/records/contacts?q=turing")
    page.get_by_role("link", name="Alan Turing", exact=True).click()
    assert re.search(r"Mathematician\s+Codebreaker", page.locator("main").inner_text())
    page.goto("/records/companies?q=langley")
    expect(page.get_by_role("link", name="Langley; NASA", exact=True)).to_have_count(1)

    # Listed on the Import page.
    page.goto("/imports")
    row = page.locator("tbody tr", has=page.get_by_role("link", name="hubspot-contacts.csv"))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Done")
    expect(row).to_contain_text("6 of 6")
    expect(row).to_contain_text("4 created, 0 updated, 0 skipped, 2 failed")
    check_a11y(page, "the import page with an import")
    row.get_by_role("link", name="hubspot-contacts.csv").click()
    expect(page).to_have_url(re.compile(re.escape(import_path) + "$"))

    # The same file again: every row matches on email and is skipped.
    upload(page, "hubspot-contacts.csv", HUBSPOT_CSV)
    expect(page.get_by_text("These rows would give 0 new, 0 updated, 4 skipped and 2 failed")).to_be_visible()
    page.get_by_role("button", name="Import 6 rows").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    expect(page.locator(".facts")).to_contain_text("Skipped4")
    assert sorted(contacts_named(page, "langley")) == ["Katherine Johnson", "Mary Jackson"]

    # A corrected file, matched rows updated: only what changed is written.
    corrected = HUBSPOT_CSV.replace(b"Engineer", b"Aerospace Engineer")
    upload(page, "hubspot-contacts-corrected.csv", corrected)
    page.get_by_label("When a row matches one").select_option("update")
    page.get_by_role("button", name="Update the preview").click()
    expect(page.get_by_label("When a row matches one")).to_have_value("update")
    expect(page.get_by_text("These rows would give 0 new, 1 updated, 3 skipped and 2 failed")).to_be_visible()
    page.get_by_role("button", name="Import 6 rows").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    expect(page.locator(".facts")).to_contain_text("Updated1")
    page.goto("/records/contacts?q=jackson")
    page.get_by_role("link", name="Mary Jackson").click()
    expect(page.locator("main")).to_contain_text("Aerospace Engineer")


def test_a_file_that_is_not_csv_is_refused(owner: Page) -> None:
    page = owner
    page.goto("/imports")
    before = page.locator("tbody tr").count()
    for name, data, why in [
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)), "binary"),
        ("contacts.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64, "spreadsheet workbook"),
        ("header-only.csv", b"First Name,Last Name\r\n", "no rows"),
        ("latin1.csv", "First Name,Last Name\r\nJos\u00e9,Garc\u00eda\r\n".encode("latin-1"), "UTF-8"),
    ]:
        upload(page, name, data, mime="application/octet-stream")
        expect(page).to_have_url(re.compile(r"/imports$"))
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text(name)
        expect(alert).to_contain_text(why)
        check_a11y(page, f"the refused upload of {name}")
        assert page.locator("tbody tr").count() == before, f"{name} was listed as an import"
    # A file with no column that fills anything says which columns it has.
    upload(page, "shoes.csv", b"Shoe size,Colour\n42,red\n")
    expect(page.get_by_role("alert")).to_contain_text("Shoe size, Colour")
    assert contacts_named(page, "jos") == []


def test_two_columns_for_one_field_are_previewed_not_refused(owner: Page) -> None:
    """Exports often have a phone and a mobile phone: the second is left out, saying so."""
    page = owner
    upload(page, "phones.csv", b"First Name,Last Name,Phone,Mobile Phone\nLin,Two-Phones,+1 555 0101,+1 555 0102\n")
    expect(page.get_by_role("heading", name="Import contacts from phones.csv")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("“Phone” and “Mobile Phone” both fill phone, so “Mobile Phone” is left out")
    expect(page.get_by_label("Phone", exact=True)).to_have_value("phone")
    expect(page.get_by_label("Mobile Phone", exact=True)).to_have_value("")
    page.get_by_label("Mobile Phone", exact=True).select_option(label="new custom field custom.mobile_phone (text)")
    page.get_by_role("button", name="Update the preview").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator(".lede")).to_contain_text("1 row, CSV.")
    page.get_by_role("button", name="Import 1 row", exact=True).click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    page.goto("/records/contacts?q=two-phones")
    page.get_by_role("link", name="Lin Two-Phones").click()
    expect(page.locator("main")).to_contain_text("+1 555 0101")
    expect(page.locator("main")).to_contain_text("+1 555 0102")


def test_a_failed_row_leaves_no_company_behind(owner: Page) -> None:
    page = owner
    upload(page, "orphan.csv", b"First Name,Last Name,Email,Company\nOrphan,Row,not-an-email,Orphan Industries\n"
                               b"Kept,Row,kept@fine.example,Fine Company\n")
    expect(page.get_by_text("These rows would give 1 new, 0 updated, 0 skipped and 1 failed")).to_be_visible()
    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    page.goto("/records/companies?q=orphan")
    expect(page.get_by_text("No companies match")).to_be_visible(timeout=1_000)


def test_the_failed_rows_download_keeps_every_cell(owner: Page) -> None:
    page = owner
    upload(page, "extra.csv", b"First Name,Last Name,Email\nExtra,Cell,extra@cells.example,Ltd.\n"
                              b"Fine,Row,fine@cells.example\n")
    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    _, data = downloaded(page, page.get_by_role("link", name="Download the 1 failed rows (CSV)"))
    assert "Ltd." in data.decode(), data


def test_companies_from_json_lines_and_an_import_from_the_command_line(owner: Page) -> None:
    page = owner
    # The Import button of the companies list starts on companies.
    page.goto("/records/companies")
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_label("Records", exact=True)).to_have_value("companies")
    page.goto("/imports?entity=deals")
    expect(page.get_by_label("Records", exact=True)).to_have_value("deals")

    lines = b"\n".join([
        json.dumps({"name": "Initech", "domain": "initech.example", "industry": "Software"}).encode(),
        json.dumps({"name": "Globex", "website": "globex.example", "employees": 120}).encode(),
        b"{not json",
        json.dumps({"domain": "nameless.example"}).encode(),
    ]) + b"\n"
    upload(page, "companies.jsonl", lines, entity="companies", mime="application/x-ndjson")
    expect(page.get_by_role("heading", name="Import companies from companies.jsonl")).to_be_visible()
    expect(page.locator(".lede")).to_contain_text("4 rows, JSON lines.")
    expect(page.get_by_label("name", exact=True)).to_have_value("name")
    expect(page.get_by_label("website", exact=True)).to_have_value("domain")
    # Each line's values under their keys, whatever order or keys a line has.
    header = page.get_by_role("region", name=re.compile(r"^First \d+ rows")).locator("thead th").all_inner_texts()
    rows = preview_rows(page)
    assert list(rows) == ["1", "2", "3", "4"], rows
    keys = [h.lower() for h in header[2:]]
    globex = dict(zip(keys, rows["2"][1]))
    assert globex["name"] == "Globex" and globex["website"] == "globex.example" and globex["employees"] == "120", globex
    assert globex["domain"] == "" and globex["industry"] == "", globex
    assert rows["1"][0].strip() == "ok" and rows["2"][0].strip() == "ok", rows
    assert rows["3"][0].startswith("fails"), rows["3"]
    assert rows["4"][0].startswith("fails") and "name" in rows["4"][0], rows["4"]
    check_a11y(page, "the preview of JSON lines")
    page.get_by_role("button", name="Import 4 rows").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)
    expect(page.locator(".facts")).to_contain_text("Created2")
    page.goto("/records/companies?q=globex")
    expect(page.get_by_role("link", name="Globex", exact=True)).to_be_visible()

    # An import run on the server's command line shows on the Import page, done.
    csv_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"cli-companies-{os.getpid()}.csv"
    csv_file.write_text("Company Name,Website\nHooli,hooli.example\nPied Piper,piedpiper.example\n")
    try:
        subprocess.run([os.environ["RAPPORT_BIN"], "import", "companies", str(csv_file)], check=True,
                       capture_output=True, text=True, env=os.environ)
    finally:
        csv_file.unlink()
    page.goto("/imports")
    row = page.locator("tbody tr", has_text=csv_file.name)
    expect(row).to_contain_text("Done")
    expect(row).to_contain_text("2 created")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("Created2")


def test_export_downloads_the_list_and_its_search(owner: Page) -> None:
    page = owner
    page.goto("/records/contacts")
    name, data = downloaded(page, page.get_by_role("link", name="Export contacts as CSV"))
    assert name == "contacts.csv", name
    table = csv_rows(data)
    header = table[0]
    assert "email" in header and "first_name" in header, header
    emails = {r[header.index("email")] for r in table[1:]}
    assert {"grace@navylabs.example", "alan@bletchley.example", "katherine@langley.example",
            "mary@langley.example"} <= emails, emails
    # A cell a spreadsheet would run is neutralised; a line break in a cell survives.
    titles = {r[header.index("email")]: r[header.index("title")] for r in table[1:]}
    assert titles["katherine@langley.example"] == "'=SUM(A1:A2)", titles
    assert titles["alan@bletchley.example"] == "Mathematician\nCodebreaker", titles

    # Searched: the link says so, and the file holds the matches only.
    page.get_by_label("Search contacts").fill("langley")
    page.get_by_role("button", name="Search").click()
    link = page.get_by_role("link", name="Export these contacts as CSV")
    expect(link).to_have_attribute("href", "/records/contacts/export?q=langley")
    name, data = downloaded(page, link)
    table = csv_rows(data)
    assert sorted(r[table[0].index("email")] for r in table[1:]) == ["katherine@langley.example", "mary@langley.example"]

    # Other lists too.
    page.goto("/records/companies")
    name, data = downloaded(page, page.get_by_role("link", name="Export companies as CSV"))
    assert name == "companies.csv"
    table = csv_rows(data)
    names = [r[table[0].index("name")] for r in table[1:]]
    assert "Navy Labs" in names and "Langley; NASA" in names, names


def test_personal_data_is_exported_and_erased(owner: Page) -> None:
    page = owner
    page.goto("/activity")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Personal data").click()
    expect(page).to_have_url(re.compile(r"/settings/privacy$"))
    expect(page.get_by_role("heading", name="Personal data", level=1)).to_be_visible()
    check_a11y(page, "the personal data page")
    shot(page, "privacy")

    # Everything held about Grace, as JSON.
    held_form = page.get_by_role("region", name="What is held about someone")
    held_form.get_by_label("Email", exact=True).fill("Grace@NavyLabs.example")
    name, data = downloaded(page, page.get_by_role("button", name="Download as JSON"))
    assert name == "personal-data-grace@navylabs.example.json", name
    held = json.loads(data)
    assert held["email"] == "grace@navylabs.example"
    assert [c["first_name"] for c in held["contacts"]] == ["Grace"], held["contacts"]
    grace = held["contacts"][0]["id"]
    assert held["timelines"][grace], "her change log is in it"

    # A confirmation that differs erases nothing.
    form = page.locator("form", has=page.get_by_role("button", name="Erase for good"))
    form.get_by_label("Email", exact=True).fill("grace@navylabs.example")
    form.get_by_label("Type it again to confirm").fill("alan@bletchley.example")
    form.get_by_role("button", name="Erase for good").click()
    expect(page.get_by_role("alert")).to_contain_text("nothing was erased")
    check_a11y(page, "the refused erasure")
    assert contacts_named(page, "hopper") == ["Grace Hopper"]

    # The same address twice: she is gone, and the page says what went.
    page.goto("/settings/privacy")
    form.get_by_label("Email", exact=True).fill("grace@navylabs.example")
    form.get_by_label("Type it again to confirm").fill("Grace@NavyLabs.example")
    form.get_by_role("button", name="Erase for good").click()
    expect(page.get_by_role("status")).to_contain_text("Erased grace@navylabs.example: 1 contact, 0 notes and 0 tasks")
    assert contacts_named(page, "hopper") == []
    assert "navylabs" not in page.request.get(f"{BASE}/records/contacts/{grace}").text()
    page.goto("/settings/privacy")
    held_form.get_by_label("Email", exact=True).fill("grace@navylabs.example")
    name, data = downloaded(page, page.get_by_role("button", name="Download as JSON"))
    assert json.loads(data)["contacts"] == []
    # Someone nothing is held about: said so.
    page.goto("/settings/privacy")
    form.get_by_label("Email", exact=True).fill("nobody@nowhere.example")
    form.get_by_label("Type it again to confirm").fill("nobody@nowhere.example")
    form.get_by_role("button", name="Erase for good").click()
    expect(page.get_by_role("alert")).to_contain_text("no contact of this organization has the email nobody@nowhere.example; nothing was erased")
    actions = audit_actions(page)
    assert any("erase" in a for a in actions), actions


def invited(owner: Page, browser: Browser, email: str, role: str) -> tuple[BrowserContext, Page]:
    """A person invited by the owner with `role`, logged in, in a context of their own."""
    owner.goto("/settings/users")
    owner.get_by_label("Email").fill(email)
    owner.get_by_label("Role", exact=True).select_option(role)
    owner.get_by_role("button", name="Create invitation link").click()
    link = owner.locator("#invite-link").inner_text().strip()
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto(link)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Type it again").fill(PASSWORD)
    page.get_by_role("button", name="Accept invitation").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_text(f"{email} {role}")).to_be_visible()
    return ctx, page


def test_viewers_and_admins_on_import_and_personal_data(owner: Page, browser: Browser) -> None:
    ctx, viewer = invited(owner, browser, "victor@example.com", "viewer")
    try:
        viewer.goto("/records/contacts")
        expect(viewer.get_by_role("link", name="Export contacts as CSV")).to_be_visible()
        expect(viewer.get_by_role("link", name="Import", exact=True)).to_have_count(0)
        expect(viewer.get_by_role("navigation", name="Main").get_by_role("link", name="Personal data")).to_have_count(0)
        for path in ["/imports", "/settings/privacy", "/settings/privacy/export?email=alan@bletchley.example"]:
            assert viewer.goto(path).status == 403, path
        expect(viewer.get_by_role("heading", name="Not allowed")).to_be_visible()
        # The page's token, for posts that pass the CSRF check and meet the role's.
        viewer.goto("/activity")
        token = viewer.locator("input[name=csrf]").first.get_attribute("value")
        r = viewer.request.post(f"{BASE}/imports", multipart={
            "csrf": token, "entity": "contacts",
            "file": {"name": "v.csv", "mimeType": "text/csv", "buffer": b"First Name,Email\nVal,val@example.com\n"},
        })
        assert r.status == 403, r.status
        for path, form in [("/imports/start", {"entity": "contacts", "token": "0" * 32}),
                           ("/imports/preview", {"entity": "contacts", "token": "0" * 32}),
                           ("/settings/privacy/erase", {"email": "alan@bletchley.example",
                                                         "confirm": "alan@bletchley.example"})]:
            r = viewer.request.post(f"{BASE}{path}", form={"csrf": token, **form})
            assert r.status == 403, (path, r.status)
        assert contacts_named(owner, "val") == []
        assert contacts_named(owner, "turing") == ["Alan Turing"]
    finally:
        ctx.close()

    # Personal data is the owner's (org:manage): an admin imports, but neither sees nor reaches it.
    ctx, admin = invited(owner, browser, "ada.admin@example.com", "admin")
    try:
        expect(admin.get_by_role("navigation", name="Main").get_by_role("link", name="Personal data")).to_have_count(0)
        for path in ["/settings/privacy", "/settings/privacy/export?email=alan@bletchley.example"]:
            assert admin.goto(path).status == 403, path
        admin.goto("/records/contacts")
        token = admin.locator("input[name=csrf]").first.get_attribute("value")
        r = admin.request.post(f"{BASE}/settings/privacy/erase", form={
            "csrf": token, "email": "alan@bletchley.example", "confirm": "alan@bletchley.example"})
        assert r.status == 403, r.status
        assert contacts_named(owner, "turing") == ["Alan Turing"]
        admin.get_by_role("link", name="Import", exact=True).click()
        expect(admin.get_by_role("heading", name="Import", level=1)).to_be_visible()
        expect(admin.get_by_role("link", name="hubspot-contacts.csv").first).to_be_visible()
    finally:
        ctx.close()


def test_an_import_is_undone_from_its_report(owner: Page) -> None:
    page = owner
    page.goto(STATE["import_path"])
    page.get_by_role("link", name="Undo this import").click()
    expect(page.get_by_role("heading", name=re.compile("^Undo"), level=1)).to_be_visible()
    # The contacts it created, the companies it made for them and the field it added...
    preview = page.get_by_role("list", name="What the undo writes")
    for what in ["deleted contact Alan Turing", "deleted contact Katherine Johnson", "deleted company Navy Labs",
                 "deleted company Langley; NASA", "deleted custom field contact.lifecycle_stage"]:
        expect(preview).to_contain_text(what)
    # ...but not Mary Jackson, whom a later import corrected: that is said, and asked about.
    expect(preview).not_to_contain_text("deleted contact Mary Jackson")
    expect(page.get_by_role("alert")).to_contain_text("1 change(s) cannot be undone as they stand")
    check_a11y(page, "the undo of an import")
    shot(page, "import-undo")
    url = page.url
    assert contacts_named(page, "turing") == ["Alan Turing"], "the preview wrote nothing"
    page.goto(url)
    page.get_by_role("checkbox", name=re.compile("Undo the rest")).check()
    page.get_by_role("button", name=re.compile(r"^Undo \d+ change")).click()
    expect(page.get_by_text(re.compile(r"Undid \d+ change"))).to_be_visible()
    for q in ["turing", "johnson", "hopper"]:
        assert contacts_named(page, q) == [], q
    assert contacts_named(page, "jackson") == ["Mary Jackson"]
    page.goto("/records/companies?q=navy")
    expect(page.get_by_text("No companies match")).to_be_visible()


def test_a_long_import_is_followed_on_its_page(owner: Page) -> None:
    """Many rows: the page shows the import running and follows it (no reload by hand) to its
    report; the same file started again meanwhile is refused, saying why."""
    page = owner
    rows = 100_000
    # A new company every 1,000 rows (an import's batch).
    data = ("first_name,last_name,email,Company\n" + "".join(
        f"Bulk{i},Person,bulk{i}@bulk.example,Bulk Co {i // 1000}\n" for i in range(rows))).encode()
    polls: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("?format=json") else None)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # The second poll meets a server that is busy for a moment: the page asks again later.
    answered: list[int] = []

    def flaky(route) -> None:
        answered.append(1)
        if len(answered) == 2:
            route.fulfill(status=503, content_type="text/plain", body="busy")
        else:
            route.continue_()

    page.route(re.compile(r".*/imports/imp_[0-9a-f]+\?format=json$"), flaky)
    # The import's page as a document: once after the start, once more when it ends.
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url) if r.resource_type == "document"
            and re.search(r"/imports/imp_[0-9a-f]+$", r.url) else None)
    upload(page, "bulk.csv", data)
    expect(page.get_by_role("heading", name="Import contacts from bulk.csv")).to_be_visible()
    page.get_by_role("button", name=f"Import {rows} rows").click()
    expect(page).to_have_url(re.compile(r"/imports/imp_[0-9a-f]+$"))
    status = page.locator("#import-status")
    expect(status).to_contain_text("Running")
    expect(page.get_by_role("heading", name="Report")).to_have_count(0)
    check_a11y(page, "a running import")
    # The bar and the counts move while it runs.
    page.wait_for_function(
        "() => { const b = document.getElementById('import-bar'); return b.value > 0 && b.value < b.max; }",
        timeout=60_000)
    done, created, companies = page.evaluate(
        "() => ['rows_done', 'created', 'companies_created'].map("
        "f => Number(document.querySelector(`[data-field=${f}]`).textContent))")
    assert 0 < done < rows, done
    assert 0 < created <= done, (created, done)
    assert companies == done // 1000, (companies, done)
    shot(page, "import-running")

    # Meanwhile, the same file from another tab: refused with why, on its preview.
    other = page.context.new_page()
    upload(other, "bulk.csv", data)
    other.get_by_role("button", name=f"Import {rows} rows").click()
    expect(other.get_by_role("alert")).to_contain_text("being imported right now")
    expect(other.get_by_role("heading", name="Import contacts from bulk.csv")).to_be_visible()
    other.close()

    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=300_000)
    expect(status).to_contain_text(f"Done: {rows} of {rows} rows")
    expect(page.locator("[data-field=created]")).to_have_text(str(rows))
    expect(page.locator("[data-field=companies_created]")).to_have_text(str(rows // 1000))
    assert len(polls) >= 3, polls
    assert len(loads) == 2, f"the page reloads once, when the import ends: {loads}"
    assert [p for p in problems if "status of 503" not in p] == [], problems
    page.goto("/imports")
    expect(page.locator("tbody tr", has_text="bulk.csv")).to_have_count(1)
    expect(page.locator("tbody tr", has_text="bulk.csv")).to_contain_text(f"{rows} created")


def test_small_screens_and_zoom(browser: Browser) -> None:
    for width, what in [(390, "a 390 px phone"), (640, "200% zoom of a 1280 px window")]:
        ctx = new_context(browser, storage_state=STATE["owner_state"], viewport={"width": width, "height": 800})
        page = ctx.new_page()
        for path in ["/settings/keys", "/activity", "/records/contacts", "/settings/users", "/settings/webhooks",
                     "/settings/audit", "/imports", STATE.get("import_path", "/imports"), "/settings/privacy"]:
            page.goto(path)
            no_horizontal_scroll(page, f"{path} on {what}")
        # An import's preview: its wide tables scroll in their own box, not the page.
        upload(page, "hubspot-contacts.csv", HUBSPOT_CSV)
        expect(page.get_by_role("button", name="Import 6 rows")).to_be_visible()
        no_horizontal_scroll(page, f"an import's preview on {what}")
        ctx.close()


def test_invited_viewer_cannot_reach_admin_pages(owner: Page, browser: Browser) -> None:
    page = owner
    page.goto("/settings/users")
    check_a11y(page, "the users page")
    page.get_by_label("Email").fill("vera@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Create invitation link").click()
    link = page.locator("#invite-link").inner_text().strip()
    assert "/invite?token=" in link
    expect(page.locator("tr", has_text="vera@example.com")).to_contain_text("invited")

    ctx = new_context(browser)
    viewer = ctx.new_page()
    viewer.goto(link)
    expect(viewer.get_by_role("heading", name=re.compile("Join default"))).to_be_visible()
    viewer.get_by_label("New password").fill(PASSWORD)
    viewer.get_by_label("Type it again").fill(PASSWORD)
    viewer.get_by_role("button", name="Accept invitation").click()
    expect(viewer.get_by_role("heading", name="Activity", level=1)).to_be_visible()
    nav = viewer.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Activity")).to_be_visible()
    for hidden in ["API keys", "Users", "Webhooks", "Audit log"]:
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    for path in ["/settings/keys", "/settings/users", "/settings/webhooks", "/settings/audit"]:
        assert viewer.goto(path).status == 403
    # And cannot post to them either.
    r = viewer.request.post(f"{BASE}/settings/keys/connect", form={"csrf": "x" * 43})
    assert r.status == 403
    r = viewer.request.post(f"{BASE}/settings/webhooks", form={"csrf": "x" * 43, "url": "http://127.0.0.1:9/", "events": "*"})
    assert r.status == 403

    # Deactivated by the owner: the viewer's session ends at once.
    page.goto("/settings/users")
    page.get_by_role("button", name="Deactivate vera@example.com").click()
    expect(page.get_by_role("status")).to_contain_text("deactivated")
    viewer.goto("/activity")
    expect(viewer).to_have_url(re.compile(r"/login"))
    ctx.close()

    # The last owner cannot be demoted.
    page.goto("/settings/users")
    row = page.locator("tr", has_text="owner@localhost")
    row.get_by_label(re.compile("Role of")).select_option("admin")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_role("alert")).to_contain_text("last active owner")


def test_cli_recovers_a_locked_out_owner(browser: Browser) -> None:
    binary = os.environ["RAPPORT_BIN"]
    out = subprocess.run([binary, "setup-link", "--json"], check=True, capture_output=True, text=True, env=os.environ)
    link = json.loads(out.stdout)["url"]
    assert "/setup?token=" in link
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto(link.replace(link.split("/setup")[0], BASE))
    new = "another long passphrase here"
    page.get_by_label("New password").fill(new)
    page.get_by_label("Type it again").fill(new)
    page.get_by_role("button", name="Set password and log in").click()
    expect(page).to_have_url(re.compile(r"/settings/keys$"))
    ctx.close()
    # And `users set-password` sets it straight from stdin.
    subprocess.run([binary, "users", "set-password", "owner@localhost"], input=PASSWORD + "\n", check=True,
                   capture_output=True, text=True, env=os.environ)
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill("owner@localhost")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$|/activity$"))
    ctx.close()


def test_api_docs_are_offline_and_try_it_works(browser: Browser) -> None:
    """/api/docs: the vendored RapiDoc, nothing fetched from elsewhere, and "try it" with a key."""
    binary = os.environ["RAPPORT_BIN"]
    out = subprocess.run([binary, "keys", "create", "--name", "docs try-it", "--role", "viewer", "--json"],
                         check=True, capture_output=True, text=True, env=os.environ)
    key = json.loads(out.stdout)["key"]
    ctx = new_context(browser)
    page = ctx.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/api/docs")
    # RapiDoc renders the whole document in the page; on a busy machine that takes seconds.
    expect(page.get_by_text("List or search contacts").first).to_be_visible(timeout=30_000)
    page.locator("input[placeholder=api-token]").first.fill(key)
    page.get_by_role("button", name="SET").first.click()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/contacts")) as answer:
        page.locator("[id='get-/contacts']").get_by_role("button", name="TRY").click()
    assert answer.value.status == 200
    assert answer.value.json()["items"] == [] or "items" in answer.value.json()
    foreign = [u for u in requests if not u.startswith(BASE) and not u.startswith("data:")]
    assert not foreign, f"/api/docs fetched from elsewhere: {foreign}"
    assert not problems, problems
    ctx.close()
