"""Each role's main work in the console with the keyboard alone, on a store tablet's screen
(820x1180), in a real browser against a real `polku serve` (`e2e_console`).

After signing in nothing is clicked: Tab, Shift+Tab, Enter, Space and the arrow keys only.
On every key press the focused element must be on screen, not covered, and show a focus
indicator: its outline differs from the same element's unfocused style (snapshotted
before each key press, or an unfocused copy's), is at least 2 px wide and has a contrast
of at least 3:1 with the background behind it (WCAG 2.4.7, 1.4.11). The header's Tab order
follows its visual order, the skip link moves focus to main, Tab runs through a whole page
and comes back round (no trap), a live signal list neither steals nor drops focus and
announces new signals, and a page that answers a form focuses its error or result. Every
button, form field, navigation link and table action on each page is a touch target of at
least 44x44 CSS px (WCAG 2.5.5 and the platforms' guidance; more than the 24x24 minimum of
WCAG 2.2 AA 2.5.8, because the console is worked with fingers on a tablet in a store; links
inside running text are left out, as both criteria allow). axe-core checks each page. The
one mouse action, at the very end, checks that a tap in main's text draws no focus ring.

- store clerk: sign in, skip to content, reach the first signal of the store's queue,
  claim it, record an outcome;
- agent: search a customer by email, open her, jump to the timeline, change its channel;
- marketer: open a journey, its editor, break the definition, validate, land on the error;
- admin: in Data, create a write key.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_console import PASSWORD, Console, open_console

pytestmark = pytest.mark.slow

STORE = "HEL-KAMPPI"
TABLET = {"width": 820, "height": 1180}
TOUCH = 44  # CSS px, each side, for the main action buttons

Info = dict[str, Any]

# Installed in every page before its scripts: unfocused styles of every focusable element
# as the page loads, and a description of the focused element for the assertions.
PROBE = """
(() => {
  const FOCUSABLE =
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]";
  const rest = new WeakMap();
  const visited = new Set();
  const look = (el) => {
    const s = getComputedStyle(el);
    return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.outlineOffset, s.boxShadow].join("|");
  };
  // An element focused before it was seen (autofocus, a script on load): the style of an
  // unfocused copy of it in the same place.
  const calm = (el) => {
    const copy = el.cloneNode(false);
    copy.removeAttribute("autofocus");
    el.after(copy);
    const style = look(copy);
    copy.remove();
    return style;
  };
  const remember = () => {
    for (const el of document.querySelectorAll(FOCUSABLE)) {
      if (el !== document.activeElement && !rest.has(el)) rest.set(el, look(el));
    }
  };
  const rgb = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,/]+/).map(Number);
    return { r, g, b, a: a === undefined ? 1 : a };
  };
  const luminance = ({ r, g, b }) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (el) => {
    for (let node = el.parentElement; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const name = (el) => (el.getAttribute("aria-label") ||
    (el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent || el.value || ""
  ).replace(/\\s+/g, " ").trim().slice(0, 60);
  const tabbable = () => [...document.querySelectorAll(FOCUSABLE)].filter((el) => {
    const r = el.getBoundingClientRect();
    return el.tabIndex >= 0 && !el.disabled && r.width > 0 && r.height > 0 &&
      getComputedStyle(el).visibility !== "hidden";
  });
  const ACTIONS = "button, select, input:not([type=hidden]), textarea, nav a, " +
    "table.hits td a, table.journeys td a, .channel-links a";
  window.__kbd = {
    remember,
    small: (least) => [...document.querySelectorAll(ACTIONS)].filter((el) => {
      const r = el.getBoundingClientRect();
      return r.right > 0 && r.width > 1 && (r.width < least || r.height < least);
    }).map((el) => {
      const r = el.getBoundingClientRect();
      return `${el.tagName} ${name(el)} ${Math.round(r.width)}x${Math.round(r.height)}`;
    }),
    tabbable: () => tabbable().length,
    unvisited: () =>
      tabbable().filter((el) => !visited.has(el)).map((el) => el.tagName + " " + name(el)),
    focused: () => {
      const el = document.activeElement;
      if (!el || el === document.body || el === document.documentElement) return { tag: "BODY" };
      visited.add(el);
      const r = el.getBoundingClientRect();
      // On screen and on top at the middle of one of its boxes (a link may wrap in two).
      const onTop = (box) => {
        const top = Math.max(box.top, 0), bottom = Math.min(box.bottom, innerHeight);
        const left = Math.max(box.left, 0), right = Math.min(box.right, innerWidth);
        if (bottom <= top || right <= left) return false;
        const hit = document.elementFromPoint((left + right) / 2, (top + bottom) / 2);
        return hit === el || el.contains(hit);
      };
      const shown = [...el.getClientRects()].some(onTop);
      const s = getComputedStyle(el);
      const ring = rgb(s.outlineColor);
      const back = behind(el);
      const [light, dark] = [luminance(ring || back), luminance(back)].sort((a, b) => b - a);
      return {
        tag: el.tagName, id: el.id, name: name(el), value: el.value === undefined ? null : el.value,
        inHeader: !!el.closest("header"),
        card: (el.closest("li.signal") || {}).dataset?.signal || null,
        x: r.left, y: r.top, width: r.width, height: r.height,
        visible: shown && s.visibility !== "hidden",
        focused: look(el), unfocused: rest.has(el) ? rest.get(el) : calm(el),
        outline: s.outlineStyle !== "none" ? parseFloat(s.outlineWidth) : 0,
        contrast: (light + 0.05) / (dark + 0.05),
      };
    },
  };
  document.addEventListener("DOMContentLoaded", remember);
})();
"""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One server and browser for the four roles' tests (each uses its own users and data):
    a start costs ~11 s."""
    yield from open_console(tmp_path_factory.mktemp("keyboard"))


def _check(info: Info) -> Info:
    """The focused element is on screen and shows a focus indicator of its own."""
    if info["tag"] == "BODY":
        return info
    what = f"{info['tag']} {info['name']!r}"
    assert info["visible"], f"focused {what} is off screen or covered: {info}"
    assert info["focused"] != info["unfocused"], f"focused {what} looks as when unfocused"
    assert info["outline"] >= 2, f"focused {what} has no outline of 2 px or more: {info}"
    assert info["contrast"] >= 3, f"focus ring of {what}: contrast {info['contrast']:.2f}"
    return info


def _focused(page: Any) -> Info:
    info: Info = page.evaluate("window.__kbd.focused()")
    return _check(info)


def _press(page: Any, key: str) -> Info:
    page.evaluate("window.__kbd.remember()")
    page.keyboard.press(key)
    return _focused(page)


def _go(page: Any, key: str = "Enter") -> Info:
    """A key that follows a link or sends a form: the next page, and what has focus there."""
    page.evaluate("window.__kbd.remember()")
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_load_state("load")
    return _focused(page)


def _tab_to(
    page: Any, wanted: Callable[[Info], bool], what: str, limit: int = 60, key: str = "Tab"
) -> Info:
    seen: list[str] = []
    for _ in range(limit):
        info = _press(page, key)
        if wanted(info):
            return info
        seen.append(f"{info['tag']} {info.get('name', '')!r}")
    raise AssertionError(f"{key} never reached {what} in {limit} presses: {seen}")


def _named(name: str, tag: str | None = None) -> Callable[[Info], bool]:
    return lambda i: i.get("name") == name and (tag is None or i["tag"] == tag)


def _touch(info: Info) -> None:
    assert info["width"] >= TOUCH and info["height"] >= TOUCH, (
        f"{info['tag']} {info['name']!r} is {info['width']:.0f}x{info['height']:.0f} CSS px,"
        f" under {TOUCH}x{TOUCH}"
    )


def _checked(console: Console, page: Any) -> None:
    """axe-core passes, and every button, form field, navigation link and table action on
    the page is a touch target of at least 44x44 CSS px."""
    console.accessible(page)
    assert page.evaluate(f"window.__kbd.small({TOUCH})") == [], page.url


def _sign_in(console: Console, email: str) -> Any:
    """A tablet-sized page signed in from the keyboard: the probe in every document."""
    from playwright.sync_api import expect

    context = console.browser.new_context(locale="en-GB", viewport=TABLET, has_touch=True)
    context.add_init_script(PROBE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(console.url + "/login")
    assert _focused(page)["id"] == "email"  # autofocus
    page.keyboard.type(email)
    assert _press(page, "Tab")["id"] == "password"
    page.keyboard.type(PASSWORD)
    _go(page)
    expect(page.get_by_test_id("who")).to_contain_text(email)
    return page


def _header_in_order(page: Any, areas: list[str]) -> list[Info]:
    """Tab from the top of the page through the header: the skip link first, then the
    header's controls in visual order (rows top to bottom, each left to right), each a
    touch target; the area links are the role's."""
    first = _press(page, "Tab")
    assert first["name"] == "Skip to content", first
    header = []
    while True:
        info = _press(page, "Tab")
        if not info.get("inHeader"):
            break
        _touch(info)
        header.append(info)
    names = [i["name"] for i in header]
    assert names[0] == "Polku console" and names[-2:] == ["Change", "Sign out"], names
    assert names[1 : 1 + len(areas)] == areas, names
    for a, b in itertools.pairwise(header):
        same_row = abs((a["y"] + a["height"] / 2) - (b["y"] + b["height"] / 2)) < a["height"] / 2
        assert (b["x"] > a["x"]) if same_row else (b["y"] > a["y"]), (
            f"Tab goes from {a['name']!r} to {b['name']!r}, against the visual order"
        )
    return header


def _skip_to_main(page: Any) -> None:
    """On a page just opened: the first Tab reaches the skip link, Enter moves focus to main."""
    assert _press(page, "Tab")["name"] == "Skip to content"
    assert _press(page, "Enter")["id"] == "main"


def _no_trap(page: Any) -> None:
    """Tab visits every tabbable element of the page and comes back round to the top."""
    count: int = page.evaluate("window.__kbd.tabbable()")
    for _ in range(count + 3):
        _press(page, "Tab")
    assert page.evaluate("window.__kbd.unvisited()") == []
    _tab_to(page, _named("Skip to content"), "the skip link again", limit=count + 3)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _send(console: Console, batch: list[dict[str, Any]]) -> None:
    for message in batch:
        message.setdefault("messageId", str(uuid.uuid4()))
        message.setdefault("timestamp", datetime.now(UTC).isoformat())
    server = console.server
    response = httpx.post(
        f"{server.url}/v1/batch", json={"batch": batch}, auth=(server.write_key, ""), timeout=10
    )
    assert response.status_code == 200, response.text


def _stock_check(console: Console, name: str) -> None:
    """A shopper 2.7 km from Kamppi checks a jacket's stock there: a signal on its queue."""
    anonymous = f"dev-{uuid.uuid4().hex[:8]}"
    _send(
        console,
        [
            {
                "type": "identify",
                "anonymousId": anonymous,
                "traits": {"address": {"postal_code": "00510"}, "name": name},
            },
            {
                "type": "track",
                "event": "Store Stock Checked",
                "anonymousId": anonymous,
                "context": {"channel": "web"},
                "properties": {"store_id": STORE, "product_id": "TUULI-JACKET"},
            },
        ],
    )


def _signals(console: Console) -> list[dict[str, Any]]:
    body = _ok(console.api("GET", "/v1/signals", params={"queue": f"store:{STORE}"}))
    found: list[dict[str, Any]] = body["signals"]
    return found


def test_a_store_clerk_claims_a_signal_and_records_an_outcome_by_keyboard(
    console: Console,
) -> None:
    from playwright.sync_api import expect

    console.store(STORE, "Kamppi", 60.1689, 24.9322)
    product = {
        "product_id": "TUULI-JACKET",
        "name": "Tuuli jacket",
        "category": ["Naiset", "Takit"],
        "variants": [{"sku": "TUULI-M", "price": "189.00", "currency": "EUR", "size": "M"}],
    }
    _ok(console.api("POST", "/v1/catalog/products", json=product))
    _ok(
        console.api(
            "POST",
            "/v1/stock/counts",
            json={"location_id": STORE, "lines": [{"sku": "TUULI-M", "quantity": 3}]},
        )
    )
    _stock_check(console, "Anna Korhonen")
    [earlier] = _until("the first signal", lambda: _signals(console))
    clerk = console.user("aino@kamppi.example", "store_staff", STORE)

    page = _sign_in(console, clerk)
    _header_in_order(page, ["Buying signals", "Customers", "Stock and orders"])
    _checked(console, page)
    _tab_to(page, _named("Buying signals"), "the signals link", limit=10, key="Shift+Tab")
    _go(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Buying signals: Store {STORE}")
    _checked(console, page)

    _skip_to_main(page)
    # A signal arrives while focus is outside the list: the list updates, focus stays on
    # main, and the new signal is announced.
    _stock_check(console, "Ville Nieminen")
    expect(page.locator("li.signal")).to_have_count(2, timeout=30_000)
    arrived = {c.get_attribute("data-signal") for c in page.locator("li.signal").all()}
    [fresh] = arrived - {str(earlier["id"])}
    expect(page.locator("#announcer")).to_contain_text(f"Signal #{fresh} · stock_check_near_home")
    expect(page.locator("#announcer")).not_to_contain_text(f"Signal #{earlier['id']}")
    # Read out once: by the announcer, not again as the whole list's new content.
    assert page.locator("#signal-list").get_attribute("aria-live") is None
    assert _focused(page)["id"] == "main"

    first = page.locator("li.signal").first.get_attribute("data-signal")
    claim = _tab_to(page, lambda i: i["name"] == "Claim" and i["card"] == first, "Claim")
    _touch(claim)
    back = _go(page)
    # The page reloaded after the claim: focus is back on the same card, not at the top.
    assert back["card"] == first and back["tag"] == "BUTTON", back
    expect(page.locator(f'li.signal[data-signal="{first}"] [data-testid=status]')).to_have_text(
        f"Claimed by {clerk}"
    )
    _checked(console, page)

    # A third signal while focus is inside the list: the swap waits, focus is not lost.
    _stock_check(console, "Eino Laine")
    _until("the third signal", lambda: len(_signals(console)) == 3)
    page.wait_for_timeout(2_000)
    still = _focused(page)
    assert (still["card"], still["name"]) == (first, back["name"]), still
    assert page.evaluate("document.activeElement.isConnected")

    outcome = _tab_to(page, lambda i: i["id"] == f"outcome-{first}", "the outcome menu")
    _touch(outcome)
    for _ in range(6):
        if _focused(page)["value"] == "sold":
            break
        page.keyboard.press("ArrowDown")
    assert _focused(page)["value"] == "sold"
    record = _tab_to(page, _named("Record outcome", "BUTTON"), "Record outcome", limit=3)
    _touch(record)
    after = _go(page, "Space")
    assert after["card"] == first and after["name"] == "Record outcome", after
    expect(page.locator(f'li.signal[data-signal="{first}"] [data-testid=outcome]')).to_have_text(
        "Sold"
    )
    expect(page.locator("li.signal")).to_have_count(3)  # the deferred change, now shown
    body = _ok(console.api("GET", f"/v1/signals/{first}"))
    assert body["claimed_by"] == clerk and body["outcome"] == "sold", body
    console.shoot(page, "keyboard-signals-tablet")
    _no_trap(page)


def test_an_agent_finds_a_customer_and_filters_her_timeline_by_keyboard(
    console: Console,
) -> None:
    from playwright.sync_api import expect

    email = "anna.virtanen@koti.fi"
    web = {"channel": "web"}
    _send(
        console,
        [
            {"type": "page", "anonymousId": "anna-web", "name": "Jackets", "context": web},
            {
                "type": "identify",
                "anonymousId": "anna-web",
                "context": web,
                "traits": {"first_name": "Anna", "last_name": "Virtanen", "email": email},
            },
            {
                "type": "track",
                "event": "Store Visited",
                "anonymousId": "anna-web",
                "context": {"channel": "store"},
                "properties": {"store_id": STORE},
            },
        ],
    )
    lookup = {"type": "email", "value": email}
    found = _until(
        "her profile",
        lambda: console.api("GET", "/v1/profiles/lookup", params=lookup).status_code == 200,
    )
    assert found
    agent = console.user("eero@shop.example", "agent")

    page = _sign_in(console, agent)
    _header_in_order(page, ["Buying signals", "Customers", "Stock and orders"])
    _tab_to(page, _named("Customers"), "the customers link", limit=10, key="Shift+Tab")
    _go(page)
    _checked(console, page)

    _skip_to_main(page)
    assert _press(page, "Tab")["id"] == "q"
    page.keyboard.type(email)
    _touch(_press(page, "Tab"))  # the Search button
    page.keyboard.press("Shift+Tab")
    _go(page)  # Enter in the search field sends the search
    expect(page.locator("table.hits tbody tr")).to_have_count(1)
    _skip_to_main(page)
    _tab_to(page, _named("Anna Virtanen", "A"), "the customer's link", limit=6)
    _go(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Anna Virtanen")
    _checked(console, page)

    # The sections' links jump: after "Timeline", the next Tab is the channel filter.
    _skip_to_main(page)
    _tab_to(page, _named("Timeline", "A"), "the Timeline section link", limit=20)
    page.keyboard.press("Enter")
    channel = _press(page, "Tab")
    assert channel["id"] == "channel", channel
    _touch(channel)
    for _ in range(6):
        if _focused(page)["value"] == "store":
            break
        page.keyboard.press("ArrowDown")
    assert _focused(page)["value"] == "store"
    show = _press(page, "Tab")
    assert show["name"] == "Show", show
    _touch(show)
    _go(page)
    assert page.url.endswith("?channel=store#timeline"), page.url
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("li[data-channel=store]")).to_have_count(1)
    expect(timeline.locator("li[data-channel=web]")).to_have_count(0)
    expect(page.locator("#channel")).to_have_value("store")
    _checked(console, page)
    console.shoot(page, "keyboard-customer-tablet")
    _no_trap(page)


def test_a_marketer_edits_a_journey_and_lands_on_the_validation_error_by_keyboard(
    console: Console,
) -> None:
    from playwright.sync_api import expect

    _ok(console.api("POST", "/v1/journeys/library/abandoned-cart"))
    marketer = console.user("maija@markkinointi.example", "marketer")

    page = _sign_in(console, marketer)
    _header_in_order(page, ["Customers", "Journeys", "Data"])
    _tab_to(page, _named("Journeys"), "the journeys link", limit=10, key="Shift+Tab")
    _go(page)
    _checked(console, page)
    _skip_to_main(page)
    _tab_to(page, _named("Abandoned cart", "A"), "the journey's link", limit=10)
    _go(page)
    _checked(console, page)
    _skip_to_main(page)
    _tab_to(page, _named("Edit the journey", "A"), "the editor link", limit=20)
    _go(page)
    _checked(console, page)

    _skip_to_main(page)
    editor = _tab_to(page, lambda i: i["id"] == "document", "the definition", limit=6)
    original = editor["value"]
    assert "template: abandoned_cart" in original
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(original.replace("template: abandoned_cart", "template: oops", 1))
    # Tab leaves the text area (no trap) for the Validate button.
    validate = _press(page, "Tab")
    assert validate["name"] == "Validate", validate
    _touch(validate)
    error = _go(page)
    # The page opens on the error: focused (and so read out), then Tab goes to the text.
    assert error["id"] == "editor-error", error
    expect(page.get_by_test_id("error-field")).to_have_text("steps[2:remind].template")
    expect(page.get_by_test_id("editor-error")).to_contain_text("oops")
    expect(page.locator("#document")).to_have_attribute("aria-describedby", "editor-error")
    _checked(console, page)
    console.shoot(page, "keyboard-journey-editor-tablet")
    assert _press(page, "Tab")["id"] == "document"
    assert console.api("GET", "/v1/journeys/abandoned-cart").json()["version"] == 1
    _no_trap(page)


def test_an_admin_creates_a_write_key_by_keyboard(console: Console) -> None:
    from playwright.sync_api import expect

    admin = console.user("ada@example.fi", "admin")
    page = _sign_in(console, admin)
    areas = ["Buying signals", "Customers", "Stock and orders", "Journeys", "Data"]
    _header_in_order(page, areas)
    _tab_to(page, _named("Data"), "the data link", limit=10, key="Shift+Tab")
    _go(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Event debugger")
    _checked(console, page)
    _skip_to_main(page)
    _tab_to(page, _named("Write keys and sources", "A"), "the sources link", limit=6)
    _go(page)
    _checked(console, page)

    _skip_to_main(page)
    _tab_to(page, lambda i: i["id"] == "source_name", "the source name", limit=20)
    page.keyboard.type("till-7")
    create = _press(page, "Tab")
    assert create["name"] == "Create a write key", create
    _touch(create)
    done = _go(page, "Space")
    # The page opens on the new key (shown once): focused, so it is read out.
    assert done["name"].startswith("The new write key"), done
    key = page.get_by_test_id("new-key").inner_text()
    _checked(console, page)
    console.shoot(page, "keyboard-write-key-tablet")
    event = {"userId": "u-till", "event": "Till Opened"}
    sent = httpx.post(console.server.url + "/v1/track", json=event, auth=(key, ""), timeout=10)
    assert sent.status_code == 200, sent.text
    _no_trap(page)

    # A tap on main's text focuses main (it has tabindex -1 for the skip link): no ring then.
    tapped = console.page(admin, **TABLET)
    tapped.goto(console.url + "/data/sources")
    tapped.get_by_role("heading", level=1).click()
    ring = tapped.evaluate(
        "[document.activeElement.id, getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert ring == ["main", "none"], ring
