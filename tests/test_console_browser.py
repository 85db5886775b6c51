"""The console in a real browser: Debian's Chromium driven by Playwright over loopback HTTP.

An accountant signs in, finds the invoice that failed for an unmapped SKU, sees why, has the
mapping fixed, re-syncs it with a reason, sees it synced and finds the audit entry.

Screenshots of each page are taken; with FINSYNC_DOCS_IMAGES=1 they replace
docs/images/console-*.png (the pictures of docs/console.md), otherwise they go to tmp_path.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from api.app import create_app
from tests.console_support import (
    console_setup,
    keys_for_roles,
    make_console_engine,
    scripted,
    seed_ledger,
)
from tests.engine_support import REPO, Clock

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (bash .ci/system-deps installs it)",
)


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, object, dict[str, str], object, object]]:
    """The console on 127.0.0.1 (uvicorn in a thread) over a seeded SQLite ledger."""
    setup = console_setup(tmp_path, f"sqlite:///{tmp_path / 'console.db'}")
    clock = Clock()
    engine = make_console_engine(setup, clock)
    seeded = seed_ledger(engine)
    keys = keys_for_roles(engine, clock)
    out_dir = setup.config().report.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "finance-2026-01.xlsx").write_bytes(b"PK\x03\x04january")
    app = create_app(setup.config(), engine=engine, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", setup, keys, engine, seeded.billing
    server.should_exit = True
    thread.join(timeout=10)
    engine.close()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield context.new_page()
        context.close()
        browser.close()


def _shots_dir(tmp_path: Path) -> Path:
    if os.environ.get("FINSYNC_DOCS_IMAGES") == "1":
        return REPO / "docs" / "images"
    return tmp_path / "shots"


def test_accountant_fixes_a_failed_invoice_from_the_browser(served, page, tmp_path):
    base, setup, keys, engine, _billing = served
    shots = _shots_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def shoot(name: str) -> None:
        page.screenshot(path=str(shots / f"console-{name}.png"), full_page=True)

    # Not signed in: any page answers with the sign-in form.
    page.goto(f"{base}/failures")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key or identity-provider token").fill(keys["accountant"])
    shoot("signin")
    page.get_by_role("button", name="Sign in").click()

    # Back where we wanted to go: the failures list, filtered to what needs attention.
    expect(page).to_have_url(f"{base}/failures")
    expect(page.get_by_role("heading", name="Failures")).to_be_visible()
    rows = page.locator("#records tbody tr")
    expect(rows).to_have_count(2)
    expect(page.get_by_role("link", name="invoice INV-1")).to_be_visible()
    expect(page.locator("#records").get_by_text("no item mapped for SKU 'cdn-pro'")).to_be_visible()
    shoot("failures")

    # A search by document number narrows the list; its CSV holds exactly what is listed.
    listed_before = rows.count()
    page.get_by_label("Search").fill("INV-1")
    page.get_by_label("Search").press("Enter")
    expect(page.get_by_role("link", name="invoice INV-1")).to_be_visible()
    listed = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert 1 <= len(listed) <= listed_before and all("INV-1" in row for row in listed)
    with page.expect_download() as exported:
        page.get_by_role("link", name=re.compile(r"as CSV$")).click()
    table = list(csv.reader(io.StringIO(Path(exported.value.path()).read_text("utf-8"))))
    assert len(table) == 1 + len(listed)  # a header, then one row per listed record
    assert any("invoice INV-1" in cell for cell in table[1])
    page.goto(f"{base}/failures")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator(".tile.status-failed strong")).to_have_text("2")
    expect(page.locator(".tile.status-synced strong")).to_have_text("5")
    shoot("dashboard")

    # The failed record: its error and what billing holds now.
    page.get_by_role("link", name="Failures").click()
    page.get_by_role("link", name="invoice INV-1").click()
    expect(page.get_by_role("heading", name="invoice INV-1")).to_contain_text("failed")
    expect(page.locator(".error-box")).to_contain_text("add it to mapping file mapping.toml")
    expect(page.locator("#current-state")).to_contain_text("mapping failed")
    shoot("record-failed")

    # The accountant's admin maps the SKU in the mapping file the config names.
    mapping = setup.config().mapping_file
    mapping.write_text(
        mapping.read_text().replace('plat-pro = "102"', 'plat-pro = "102"\ncdn-pro = "104"')
    )
    page.reload()
    expect(page.locator("#current-state")).to_contain_text("never sent")

    page.get_by_label("Why is it sent again?").fill("cdn-pro mapped to NetSuite item 104")
    page.get_by_role("button", name="Re-sync").click()
    expect(page.locator(".flash.ok")).to_contain_text("queued; now synced")
    expect(page.get_by_role("heading", name="invoice INV-1")).to_contain_text("synced")
    expect(page.locator(".error-box")).to_have_count(0)
    shoot("record-synced")

    # It is in the target system, with the new item.
    stored = {r["external_id"]: r for r in scripted(engine).records()}
    line = stored["finsync:inv:INV-1"]["payload"]["itemList"][0]
    assert (line["item"], line["amount"]) == ({"internalId": "104"}, "250.00")

    # And on record: who, why, what.
    page.get_by_role("link", name="Audit log").click()
    entry = page.locator("table.audit tbody tr").first
    expect(entry).to_contain_text("accountant-key")
    expect(entry).to_contain_text("resync")
    expect(entry).to_contain_text("cdn-pro mapped to NetSuite item 104")
    expect(entry).to_contain_text("invoice INV-1 (queued)")
    shoot("audit")

    page.get_by_role("link", name="Runs").click()
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(2)  # the seeding sync, then the re-sync
    expect(rows.first).to_contain_text("resync")
    expect(rows.first).to_contain_text("accountant-key")
    expect(rows.first).to_contain_text("erp: 1 queued again")
    shoot("runs")
    rows.first.get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text("ok")
    expect(page.locator("#activity")).to_contain_text("invoice")
    expect(page.locator("#run-failures")).to_contain_text("No record failed in this run.")
    shoot("run")

    page.get_by_role("link", name="Workbooks").click()
    expect(page.get_by_text("finance-2026-01.xlsx")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    saved = tmp_path / "downloaded.xlsx"
    download.value.save_as(saved)
    assert saved.read_bytes() == b"PK\x03\x04january"
    shoot("workbooks")

    kept = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{base}/failures")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # A copy of the cookie kept from before the sign-out opens nothing.
    page.context.add_cookies(kept)
    page.goto(f"{base}/failures")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("this session ended (signed out)")).to_be_visible()
    if shots != REPO / "docs" / "images":
        shutil.rmtree(shots)


def test_bulk_resync_of_a_group_of_failures_after_a_mapping_fix(served, page, tmp_path):
    base, setup, keys, engine, billing = served
    shots = _shots_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    # Two more invoices fail for the same unmapped SKU as INV-1: three records, one cause.
    customer = billing.customer("INITECH-3")
    for number in ("INV-51", "INV-52"):
        billing.invoice(customer, number=number, lines=[{"sku": "cdn-pro", "unit_price": "80.00"}])
    engine.sync()

    answer = page.goto(f"{base}/failures")
    assert answer is not None
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    page.get_by_label("API key or identity-provider token").fill(keys["accountant"])
    page.get_by_role("button", name="Sign in").click()
    groups = page.locator("table.groups tbody tr")
    expect(groups).to_have_count(2)  # the cdn-pro mapping error (3) and the closed period (1)
    expect(groups.first).to_contain_text("3")
    expect(groups.first).to_contain_text("no item mapped for SKU 'cdn-pro'")
    groups.first.get_by_role("link", name="show only these").click()
    expect(page.locator("#records tbody tr")).to_have_count(3)

    # The mapping file is broken: the preview says so and keeps the typed reason.
    mapping = setup.config().mapping_file
    good = mapping.read_text()
    mapping.write_text(good + "\n[items\n")
    page.get_by_label("all 3 matching this filter").check()
    page.get_by_label("Why are they sent again?").fill("cdn-pro mapped to item 104")
    shoot = lambda name: page.screenshot(  # noqa: E731
        path=str(shots / f"console-{name}.png"), full_page=True
    )
    shoot("failures-bulk")
    page.get_by_role("button", name="Preview re-sync").click()
    expect(page.locator("#problem")).to_contain_text("the mapping file cannot be read")
    expect(page.get_by_label("Why are they sent again?")).to_have_value(
        "cdn-pro mapped to item 104"
    )
    expect(page.get_by_role("button", name="Confirm")).to_have_count(0)

    # Fixed: the preview lists the three invoices with what would go out; nothing written.
    mapping.write_text(good.replace('plat-pro = "102"', 'plat-pro = "102"\ncdn-pro = "104"'))
    page.get_by_role("button", name="Preview again").click()
    items = page.locator("#items tbody tr")
    expect(items).to_have_count(3)
    for number in ("INV-1", "INV-51", "INV-52"):
        expect(page.locator("#items")).to_contain_text(f"invoice {number}")
    expect(page.locator("#items")).to_contain_text("queued")
    assert "finsync:inv:INV-51" not in {r["external_id"] for r in scripted(engine).records()}
    shoot("bulk-preview")

    page.get_by_role("button", name="Confirm: queue and send 3").click()
    expect(page.get_by_role("heading", name="Re-sync done")).to_contain_text("3 of 3 queued")
    expect(page.locator("#items tbody tr .status-synced")).to_have_count(3)
    shoot("bulk-result")
    stored = {r["external_id"]: r for r in scripted(engine).records()}
    for number, amount in (("INV-1", "250.00"), ("INV-51", "80.00"), ("INV-52", "80.00")):
        line = stored[f"finsync:inv:{number}"]["payload"]["itemList"][0]
        assert (line["item"], line["amount"]) == ({"internalId": "104"}, amount)

    # One audit entry for the batch, with its reason and the three records.
    page.locator("#result").get_by_role("link").click()
    entry = page.locator("table.audit tbody tr").first
    expect(entry).to_contain_text("cdn-pro mapped to item 104")
    for number in ("INV-1", "INV-51", "INV-52"):
        expect(entry).to_contain_text(f"invoice {number} (queued)")
    if shots != REPO / "docs" / "images":
        shutil.rmtree(shots)
