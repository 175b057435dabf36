#!/usr/bin/env python3
"""End-to-end check of hakv's web consoles in headless Chromium, with Playwright.

    console_check.py URL [--balancer] [--token TOKEN] --screenshots DIR

URL is a console page: a node's http://HOST:PORT/ui, or with --balancer the balancer admin
listener's /ui. The check fails (exit 1, with a message saying what went wrong) on any console
error, uncaught exception, failed request, HTTP error answer or request to another origin, and
when the page does not show what it should:

- node page: the members table and the three charts fill; a key is put through the page's form
  with a TTL, read back through the page (the value shown must be the one written), found by a
  prefix scan, deleted with If-Match, and no longer found; the requests chart then shows traffic.
- balancer page: the backends table lists the backends; one is drained and undrained with its
  button, and the page and /lb/status both show each change.

Needs Debian's Chromium (apt-get install chromium: /usr/bin/chromium, or set $CHROMIUM) and
`pip install -r crates/hakv/tests/ui/requirements.txt` (Playwright, pinned); no browser download. Exit codes: 0 passed, 1 a check failed, 2 bad usage or no browser.
"""
import argparse
import json
import os
import secrets
import sys
import time
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

WAIT_MS = 15_000  # the longest any one thing may take to show up
CHROMIUM_ARGS = [
    # As root (CI) Chromium needs --no-sandbox; the rest keep it from calling out at start.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


class CheckFailed(Exception):
    pass


class Watch:
    """Collects everything that must not happen while the page is in use."""

    def __init__(self, page, origin):
        self.problems = []
        self.origin = origin
        page.on("console", self.on_console)
        page.on("pageerror", lambda e: self.problems.append(f"uncaught exception: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.method} {r.url}: {r.failure}"))
        page.on("response", self.on_response)
        page.route("**/*", self.only_same_origin)

    def on_console(self, msg):
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text}")

    def on_response(self, res):
        if res.status >= 400:
            self.problems.append(f"HTTP {res.status} for {res.request.method} {res.url}")

    def only_same_origin(self, route):
        """A request anywhere else is a failure, and is not sent."""
        scheme, netloc = urlsplit(route.request.url)[:2]
        if f"{scheme}://{netloc}" == self.origin:
            route.continue_()
        else:
            self.problems.append(f"request to another origin: {route.request.url}")
            route.abort()

    def check(self, step):
        if self.problems:
            raise CheckFailed(f"{step}: " + "; ".join(self.problems))


def wait_for(page, watch, step, js, arg=None):
    """Waits until the page function `js` returns a truthy value, failing fast on problems."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        watch.check(step)
        if page.evaluate(js, arg):
            return
        if time.monotonic() > deadline:
            raise CheckFailed(f"{step}: not seen within {WAIT_MS / 1000:.0f} s")
        page.wait_for_timeout(100)


def text(page, selector):
    return page.locator(selector).inner_text().strip()


def set_token(page, token):
    page.fill("#token", token)
    page.click("#token-form button:not([type=button])")


def check_node(page, watch, shots, token):
    wait_for(page, watch, "members table", "() => document.querySelectorAll('#members tbody tr').length > 0")
    members = page.locator("#members tbody tr").count()
    if token:
        set_token(page, token)
    wait_for(
        page, watch, "charts",
        "() => [...document.querySelectorAll('canvas')].every(c => Number(c.dataset.samples) >= 2)",
    )
    print(f"  members table: {members} row(s); {text(page, '#cluster-summary')}")
    page.screenshot(path=os.path.join(shots, "node-overview.png"), full_page=True)

    # Put a key with a TTL through the form, under a prefix of this run's own. Its name needs
    # percent-encoding (slashes, a space and a non-ASCII letter).
    prefix = f"console-check/{secrets.token_hex(4)}/"
    key = prefix + "a key é"
    value = {"written_by": "console_check", "n": secrets.randbelow(10**6), "list": [1, "two", None]}
    page.fill("#key", key)
    page.fill("#value", json.dumps(value))
    page.fill("#ttl", "300")
    page.click("#put")
    wait_for(page, watch, "put", "() => document.querySelector('#key-status').textContent.startsWith('201')")
    print(f"  put: {text(page, '#key-status')}")

    # Read it back through the page.
    page.fill("#value", "")
    page.fill("#etag", "")
    page.click("#get")
    wait_for(page, watch, "get", "() => document.querySelector('#key-status').textContent.startsWith('200')")
    shown = page.input_value("#value")
    if json.loads(shown) != value:
        raise CheckFailed(f"get: the page shows {shown!r}, expected {value!r}")
    if not page.input_value("#etag"):
        raise CheckFailed("get: the page shows no ETag")
    print(f"  get: {text(page, '#key-status')}; value shown as written")

    # The prefix scan lists it.
    page.fill("#prefix", prefix)
    page.click("#scan-form button")
    row = "(key) => [...document.querySelectorAll('#scan tbody tr')].some(tr => tr.dataset.key === key)"
    wait_for(page, watch, "scan", row, key)
    page.screenshot(path=os.path.join(shots, "node-key.png"), full_page=True)

    # Delete it, only if unchanged since the read (If-Match), and see it gone from the scan.
    page.check("#if-match")
    page.click("#delete")
    wait_for(page, watch, "delete", "() => document.querySelector('#key-status').textContent.startsWith('200 deleted')")
    print(f"  delete: {text(page, '#key-status')}")
    gone = f"(key) => !({row})(key) && document.querySelector('#scan-status').textContent === 'no keys'"
    wait_for(page, watch, "scan after delete", gone, key)

    # The requests chart saw this traffic.
    wait_for(page, watch, "requests chart showing the check's own requests", "() => Number(document.querySelector('#chart-qps').dataset.last) > 0")
    print(f"  charts: requests/s now {float(page.get_attribute('#chart-qps', 'data-last')):.1f}")
    page.screenshot(path=os.path.join(shots, "node-after.png"), full_page=True)


def check_balancer(page, watch, shots, token, origin):
    wait_for(page, watch, "backends table", "() => document.querySelectorAll('#backends tbody tr[data-addr]').length > 0")
    addrs = page.eval_on_selector_all("#backends tbody tr[data-addr]", "rows => rows.map(r => r.dataset.addr)")
    print(f"  backends table: {', '.join(addrs)}; {text(page, '#lb-summary')}")
    if token:
        set_token(page, token)
    page.screenshot(path=os.path.join(shots, "balancer-overview.png"), full_page=True)

    def status_of(addr):
        res = page.request.get(origin + "/lb/status")
        if not res.ok:
            raise CheckFailed(f"/lb/status: HTTP {res.status}")
        return next(b for b in res.json()["backends"] if b["addr"] == addr)

    addr = next((a for a in addrs if not status_of(a)["draining"]), None)
    if addr is None:
        raise CheckFailed("every backend is draining already: nothing to drain")
    row = f'#backends tr[data-addr="{addr}"]'
    draining = "([row, want]) => document.querySelector(row)?.dataset.draining === want"

    page.click(f"{row} button.drain")
    wait_for(page, watch, f"drain {addr}", draining, [row, "true"])
    if not status_of(addr)["draining"]:
        raise CheckFailed(f"drain {addr}: the page shows it draining, /lb/status does not")
    print(f"  drained {addr}: {text(page, '#action-status')}")
    page.screenshot(path=os.path.join(shots, "balancer-drained.png"), full_page=True)

    page.click(f"{row} button.drain")
    wait_for(page, watch, f"undrain {addr}", draining, [row, "false"])
    if status_of(addr)["draining"]:
        raise CheckFailed(f"undrain {addr}: the page shows it serving, /lb/status still draining")
    print(f"  undrained {addr}: {text(page, '#action-status')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="the console page, e.g. http://127.0.0.1:7379/ui")
    ap.add_argument("--balancer", action="store_true", help="URL is the balancer admin listener's console")
    ap.add_argument("--token", default=os.environ.get("HAKV_TOKEN"), help="bearer token to type into the page ($HAKV_TOKEN)")
    ap.add_argument("--screenshots", required=True, metavar="DIR", help="where to write the PNG screenshots")
    args = ap.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    scheme, netloc = urlsplit(args.url)[:2]
    origin = f"{scheme}://{netloc}"
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        print(f"console_check: no Chromium at {chromium} (apt-get install chromium, or set CHROMIUM)", file=sys.stderr)
        return 2

    started = time.monotonic()
    which = "balancer" if args.balancer else "node"
    print(f"console_check: {which} console at {args.url}")
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            print(f"console_check: Chromium at {chromium} did not start: {e}", file=sys.stderr)
            return 2
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            watch = Watch(page, origin)
            try:
                page.goto(args.url, wait_until="load", timeout=WAIT_MS)
                watch.check("load")
                if args.balancer:
                    check_balancer(page, watch, args.screenshots, args.token, origin)
                else:
                    check_node(page, watch, args.screenshots, args.token)
                watch.check("end")
            except (CheckFailed, PlaywrightError) as e:
                shot = os.path.join(args.screenshots, f"{which}-failed.png")
                try:
                    page.screenshot(path=shot, full_page=True)
                except PlaywrightError:
                    shot = "none"
                print(f"console_check: FAILED ({which} page) at {e} (screenshot: {shot})", file=sys.stderr)
                return 1
        finally:
            browser.close()
    print(f"console_check: OK, {which} page checked in {time.monotonic() - started:.1f} s; screenshots in {args.screenshots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
