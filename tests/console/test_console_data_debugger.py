"""The event debugger's list, stream and rejected-event page: filters by source and kind
(done in SQL, so a source's old events show even when newer ones of other sources fill the
newest 50), the "older" pages past the newest 50, the stream that says `changed` when an
event arrives or is refused, and a rejection's reason and body as they were received."""

from __future__ import annotations

import re

from console_world import csrf_of, shown, signed_in, stream_events, user
from fastapi.testclient import TestClient

from conftest import Polku


def _pos_key(polku: Polku, admin: TestClient) -> tuple[str, str]:
    """A second write key, `pos`, made on the sources page: (key, source id)."""
    token = csrf_of(admin.get("/console/data/sources").text)
    made = admin.post("/console/data/sources", data={"csrf_token": token, "source_name": "pos"})
    assert made.status_code == 201, made.text
    key = re.search(r'data-testid="new-key">([^<]+)<', made.text)
    source = re.search(r"pos</td><td><code>(src_\w+)</code>", made.text)
    assert key is not None and source is not None
    return key.group(1), source.group(1)


def _batch(polku: Polku, key: str, messages: list[dict[str, object]]) -> None:
    sent = polku.client.post("/v1/batch", json={"batch": messages}, auth=(key, ""))
    assert sent.status_code < 500, sent.text


def test_the_filters_pick_the_source_and_the_kind_in_sql(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    pos_key, pos = _pos_key(polku, admin)
    _batch(polku, pos_key, [{"type": "track", "userId": "u-till", "event": "Till Receipt Printed"}])
    _batch(
        polku,
        pos_key,
        [{"type": "track", "event": "Till Without Customer", "messageId": "m-till-bad"}],
    )
    # Sixty newer web events and rejections push the till's out of the newest 50 overall.
    _batch(
        polku,
        polku.write_key,
        [{"type": "track", "userId": f"u-{i}", "event": "Web Viewed"} for i in range(60)],
    )
    _batch(
        polku,
        polku.write_key,
        [{"type": "track", "event": "No One", "messageId": f"m-{i}"} for i in range(60)],
    )

    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    everything = marketer.get("/console/data/events").text
    assert "Till Receipt Printed" not in everything and "m-till-bad" not in everything

    till = marketer.get("/console/data/events", params={"source": pos}).text
    assert "Till Receipt Printed" in till and "u-till" in till and "Web Viewed" not in till
    rejected = till.split('data-testid="rejected"')[1]
    assert rejected.count('class="rejected"') == 1 and pos in rejected

    accepted_only = marketer.get("/console/data/events", params={"source": pos, "kind": "accepted"})
    assert "Till Receipt Printed" in accepted_only.text
    assert 'data-testid="rejected"' not in accepted_only.text
    rejected_only = marketer.get("/console/data/events", params={"source": pos, "kind": "rejected"})
    assert "Till Receipt Printed" not in rejected_only.text
    assert 'data-testid="accepted"' not in rejected_only.text
    assert rejected_only.text.count('class="rejected"') == 1

    web = marketer.get("/console/data/events", params={"kind": "accepted"}).text
    assert web.count("Web Viewed") == 50 and "Till Receipt Printed" not in web

    page = marketer.get("/console/data", params={"source": pos, "kind": "rejected"})
    assert page.status_code == 200 and f'value="{pos}" selected' in page.text
    assert 'data-stream="/console/data/stream?source=' in page.text

    wrong = marketer.get("/console/data", params={"kind": "maybe"})
    assert wrong.status_code == 400 and "accepted or rejected" in shown(wrong)
    long_source = marketer.get("/console/data/events", params={"source": "s" * 65})
    assert long_source.status_code == 400 and "64 characters" in shown(long_source)
    finnish = marketer.get("/console/data", params={"kind": "x"}, headers={"Accept-Language": "fi"})
    assert finnish.status_code == 400 and "valitse listasta" in shown(finnish)


def test_the_older_links_page_past_the_newest_fifty(polku: Polku) -> None:
    _batch(
        polku,
        polku.write_key,
        [{"type": "track", "userId": f"u-{i:02}", "event": f"E{i:02}"} for i in range(60)],
    )
    _batch(
        polku,
        polku.write_key,
        [{"type": "track", "event": "No One", "messageId": f"r-{i:02}"} for i in range(55)],
    )
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    first = marketer.get("/console/data")
    assert first.status_code == 200
    assert "track: E59" in first.text and "track: E10" in first.text
    assert "track: E09" not in first.text
    older = re.search(r'href="([^"]+)" data-testid="older-events"', first.text)
    assert older is not None
    second = marketer.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    names = re.findall(r"track: (E\d\d)", second.text)
    assert names == [f"E{i:02}" for i in range(9, -1, -1)]
    assert 'data-testid="older-events"' not in second.text  # nothing older
    assert "data-stream" not in second.text and "Back to the newest" in second.text
    # The rejected list stayed on its newest page, and has its own older link.
    assert second.text.count('class="rejected"') == 50

    older_rejected = re.search(r'href="([^"]+)" data-testid="older-rejected"', first.text)
    assert older_rejected is not None
    third = marketer.get(older_rejected.group(1).replace("&amp;", "&"))
    assert third.text.count('class="rejected"') == 5

    for bad in ("x", "0", "-1", "99999999999999999999"):
        refused = marketer.get("/console/data", params={"before": bad})
        assert refused.status_code == 400, bad
        assert "before must be a whole number" in shown(refused)
    assert (
        marketer.get("/console/data/events", params={"before_rejected": "1e3"}).status_code == 400
    )


def test_the_stream_says_changed_when_an_event_arrives_or_is_refused(polku: Polku) -> None:
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    page = marketer.get("/console/data")
    marker = page.text.split('data-marker="')[1].split('"')[0]
    assert stream_events(marketer, "/console/data/stream", since=marker, seconds="1.2") == []

    assert polku.send("/v1/track", {"userId": "u-1", "event": "Viewed"}).status_code < 300
    changed = stream_events(marketer, "/console/data/stream", since=marker, seconds="1.2")
    assert len(changed) == 1 and changed[0][0] == "changed" and changed[0][1] != marker
    after_event = changed[0][1]

    assert polku.send("/v1/track", {"event": "Nobody"}).status_code == 400
    refused = stream_events(marketer, "/console/data/stream", since=after_event, seconds="1.2")
    assert len(refused) == 1 and refused[0][1] != after_event
    # The browser's Last-Event-ID wins over `since`: nothing changed since the last one.
    quiet = marketer.get(
        "/console/data/stream",
        params={"since": marker, "seconds": "0.5"},
        headers={"Last-Event-ID": refused[0][1]},
    )
    assert "event: changed" not in quiet.text

    odd = marketer.get("/console/data/stream", params={"since": "x" * 500, "seconds": "0.3"})
    assert odd.status_code == 200 and "event: changed" in odd.text  # a marker it never sent
    too_long = marketer.get("/console/data/stream", params={"seconds": "60"})
    assert too_long.status_code == 400 and "0.1 to 15" in shown(too_long)
    agent = signed_in(polku, user(polku, "eero@example.com", "agent"))
    assert agent.get("/console/data/stream").status_code == 403
    assert agent.get("/console/data").status_code == 403
    anonymous = TestClient(polku.client.app).get("/console/data/stream", follow_redirects=False)
    assert anonymous.status_code == 303


def test_a_rejected_event_shows_its_reason_its_source_and_its_body(polku: Polku) -> None:
    bad = {"event": "Jacket Viewed", "messageId": "m-no-user", "properties": {"size": "M"}}
    assert polku.send("/v1/track", bad).status_code == 400
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    listed = marketer.get("/console/data", params={"kind": "rejected"}).text
    link = re.search(r'href="/console/data/rejections/(\d+)"', listed)
    assert link is not None

    detail = marketer.get(f"/console/data/rejections/{link.group(1)}")
    assert detail.status_code == 200
    text = shown(detail)
    api = polku.client.get("/v1/debugger/rejections", headers=polku.admin).json()["rejections"]
    [stored] = [r for r in api if r["message_id"] == "m-no-user"]
    assert stored["message"] in text and f"<code>{stored['code']}</code>" in text
    assert stored["field"] and f"<code>{stored['field']}</code>" in text
    assert "<dd>web <code>src_" in text and "<code>track</code>" in text  # source, endpoint
    body = text.split('data-testid="body">')[1].split("</pre>")[0]
    assert '"event": "Jacket Viewed"' in body and '"size": "M"' in body  # indented JSON

    finnish = marketer.get(
        f"/console/data/rejections/{link.group(1)}", headers={"Accept-Language": "fi"}
    )
    assert "Runko sellaisena kuin se saapui" in finnish.text

    broken = polku.client.post(
        "/v1/track",
        content=b'{"userId": "u-1", "event": "Half',
        headers={"Content-Type": "application/json"},
        auth=polku.auth,
    )
    assert broken.status_code == 400
    newest = marketer.get("/console/data", params={"kind": "rejected"}).text
    raw = re.search(r'href="/console/data/rejections/(\d+)"', newest)
    assert raw is not None and raw.group(1) != link.group(1)
    shown_raw = shown(marketer.get(f"/console/data/rejections/{raw.group(1)}"))
    assert "The body is not JSON" in shown_raw
    assert '{"userId": "u-1", "event": "Half' in shown_raw
    hint = broken.json()["error"]["hint"]  # what the sender was told is kept with it
    assert hint and f"<strong>What to do:</strong> {hint}" in shown_raw.replace("&#34;", '"')
    assert "hint" not in stored or stored["hint"] is None  # per-event errors say it in the message

    assert marketer.get("/console/data/rejections/999999").status_code == 404
    missing = marketer.get("/console/data/rejections/<script>")
    assert missing.status_code == 404 and "<script>" not in missing.text


def test_a_rejection_without_a_workspace_is_not_shown(polku: Polku) -> None:
    """A request with an unknown write key belongs to no workspace: its body may be
    another tenant's, so no workspace's debugger lists or opens it."""
    unknown = polku.client.post(
        "/v1/track", json={"userId": "u-x", "event": "Secret"}, auth=("wk_nobody", "")
    )
    assert unknown.status_code == 401
    api = polku.client.get("/v1/debugger/rejections", headers=polku.admin).json()["rejections"]
    [orphan] = [r for r in api if r["code"] == "unknown_write_key"]
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    assert "unknown_write_key" not in marketer.get("/console/data").text
    assert marketer.get(f"/console/data/rejections/{orphan['id']}").status_code == 404
