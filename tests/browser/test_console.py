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
import hashlib
import hmac
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


def test_small_screens_and_zoom(browser: Browser) -> None:
    for width, what in [(390, "a 390 px phone"), (640, "200% zoom of a 1280 px window")]:
        ctx = new_context(browser, storage_state=STATE["owner_state"], viewport={"width": width, "height": 800})
        page = ctx.new_page()
        for path in ["/settings/keys", "/activity", "/records/contacts", "/settings/users", "/settings/webhooks",
                     "/settings/audit"]:
            page.goto(path)
            no_horizontal_scroll(page, f"{path} on {what}")
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
