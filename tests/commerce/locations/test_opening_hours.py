"""Open now? and next opening, through GET /v1/locations/{id}/status: intervals past
midnight, the weekends the clocks change in Europe/Helsinki, exception days, and next
openings over a weekend and a holiday."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from finnish_stores import KAMPPI, SHOPPING_CENTRE, WEEKDAYS_9_TO_21, create, refused, status

from conftest import Polku
from polku.commerce.locations.hours import Schedule, opening_statuses, status_at
from polku.commerce.locations.schedule import DayException, parse_week


def store(polku: Polku, location_id: str, hours: dict[str, Any], **extra: Any) -> None:
    create(polku, {**KAMPPI, "location_id": location_id, "hours": hours, **extra})


def test_a_night_interval_runs_past_midnight(polku: Polku) -> None:
    store(polku, "NIGHT", {"fri": [["22:00", "02:00"]], "sat": [["10:00", "16:00"]]})
    # Friday 2026-05-15, 23:30 in Helsinki (UTC+3): open until 02:00 on Saturday.
    at_night = status(polku, "NIGHT", "2026-05-15T23:30:00+03:00")
    assert at_night["open_now"] is True
    assert at_night["closes_at"] == "2026-05-16T02:00:00+03:00"
    assert at_night["next_opening"] == "2026-05-16T10:00:00+03:00"
    # Saturday 01:59 still belongs to Friday's interval.
    assert status(polku, "NIGHT", "2026-05-15T22:59:00Z")["open_now"] is True
    after = status(polku, "NIGHT", "2026-05-16T02:00:00+03:00")
    assert after["open_now"] is False and after["closes_at"] is None
    assert after["next_opening"] == "2026-05-16T10:00:00+03:00"
    # Saturday evening: closed until Friday night, a week's wait.
    late = status(polku, "NIGHT", "2026-05-16T17:00:00+03:00")
    assert late["next_opening"] == "2026-05-22T22:00:00+03:00"
    assert late["timezone"] == "Europe/Helsinki" and late["at"] == "2026-05-16T17:00:00+03:00"


def test_the_spring_forward_night_in_helsinki(polku: Polku) -> None:
    # Clocks go from 03:00 EET to 04:00 EEST on Sunday 2026-03-29 (01:00 UTC).
    store(polku, "DST", {"sat": [["22:00", "04:00"]], "sun": [["10:00", "18:00"]]})
    before = status(polku, "DST", "2026-03-28T21:00:00Z")  # 23:00 EET
    assert before["open_now"] is True
    # 04:00 local is already summer time: the night is five hours long, not six.
    assert before["closes_at"] == "2026-03-29T04:00:00+03:00"
    # 00:30 UTC is 02:30 EET; 01:30 UTC is 04:30 EEST, after closing.
    assert status(polku, "DST", "2026-03-29T00:30:00Z")["open_now"] is True
    closed = status(polku, "DST", "2026-03-29T01:30:00Z")
    assert closed["open_now"] is False
    # Sunday's 10:00 opening is 07:00 UTC in summer time, an hour earlier than the day before.
    assert closed["next_opening"] == "2026-03-29T10:00:00+03:00"
    assert status(polku, "DST", "2026-03-29T06:59:00Z")["open_now"] is False
    assert status(polku, "DST", "2026-03-29T07:00:00Z")["open_now"] is True


def test_the_fall_back_night_in_helsinki(polku: Polku) -> None:
    # Clocks go from 04:00 EEST back to 03:00 EET on Sunday 2026-10-25 (01:00 UTC).
    store(polku, "NIGHT", {"sat": [["22:00", "04:00"]]})
    night = status(polku, "NIGHT", "2026-10-24T20:00:00Z")  # 23:00 EEST
    # 22:00 EEST to 04:00 EET: a seven-hour night.
    assert night["open_now"] is True and night["closes_at"] == "2026-10-25T04:00:00+02:00"
    # The hour that happens twice (03:00-04:00 local) is open both times.
    assert status(polku, "NIGHT", "2026-10-25T00:30:00Z")["open_now"] is True
    assert status(polku, "NIGHT", "2026-10-25T01:30:00Z")["open_now"] is True
    assert status(polku, "NIGHT", "2026-10-25T02:00:00Z")["open_now"] is False
    # Saturday's night joins Sunday's opening at 04:00: one span until Sunday midnight,
    # which is 22:00 UTC in winter time (a 25-hour Sunday).
    store(
        polku,
        "LONG",
        {"sat": [["22:00", "04:00"]], "sun": [["04:00", "24:00"]], "mon": [["09:00", "17:00"]]},
    )
    long = status(polku, "LONG", "2026-10-24T20:00:00Z")
    assert long["closes_at"] == "2026-10-26T00:00:00+02:00"
    assert long["next_opening"] == "2026-10-26T09:00:00+02:00"
    # Monday 08:30 EET is 06:30 UTC: not yet open.
    monday = status(polku, "LONG", "2026-10-26T06:30:00Z")
    assert monday["open_now"] is False and monday["next_opening"] == "2026-10-26T09:00:00+02:00"


def test_an_exception_day_closes_early(polku: Polku) -> None:
    store(
        polku,
        "XMAS",
        SHOPPING_CENTRE,
        exceptions=[
            {"date": "2026-12-24", "hours": [["08:00", "14:00"]], "note": "Christmas Eve"},
            {"date": "2026-12-25", "closed": True, "note": "Christmas Day"},
            {"date": "2026-12-26", "closed": True, "note": "Boxing Day"},
        ],
    )
    # Thursday 2026-12-24: open from 08:00, not 09:00, and until 14:00, not 21:00.
    morning = status(polku, "XMAS", "2026-12-24T08:30:00+02:00")
    assert morning["open_now"] is True and morning["note"] == "Christmas Eve"
    assert morning["closes_at"] == "2026-12-24T14:00:00+02:00"
    # It opens again on Sunday 27th at 12:00 (Friday and Saturday are holidays).
    assert morning["next_opening"] == "2026-12-27T12:00:00+02:00"
    afternoon = status(polku, "XMAS", "2026-12-24T15:00:00+02:00")
    assert afternoon["open_now"] is False
    assert afternoon["next_opening"] == "2026-12-27T12:00:00+02:00"
    boxing = status(polku, "XMAS", "2026-12-26T12:00:00+02:00")
    assert boxing["open_now"] is False and boxing["note"] == "Boxing Day"
    # Removing the exception gives the day its weekday's hours again.
    response = polku.client.delete("/v1/locations/XMAS/exceptions/2026-12-24", headers=polku.admin)
    assert response.status_code == 200, response.text
    evening = status(polku, "XMAS", "2026-12-24T20:00:00+02:00")
    assert evening["open_now"] is True and evening["note"] is None


def test_next_opening_over_a_weekend_and_a_holiday(polku: Polku) -> None:
    store(
        polku, "OFFICE", {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    response = polku.client.post(
        "/v1/locations/OFFICE/exceptions",
        json={"exceptions": [{"date": "2026-06-19", "closed": True, "note": "Midsummer Eve"}]},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    # Thursday 18 June 2026 after closing: Friday is Midsummer Eve, then the weekend.
    thursday = status(polku, "OFFICE", "2026-06-18T18:00:00+03:00")
    assert thursday["open_now"] is False
    assert thursday["next_opening"] == "2026-06-22T09:00:00+03:00"
    # Within opening hours, the next opening comes after today's closing.
    open_thursday = status(polku, "OFFICE", "2026-06-18T10:00:00+03:00")
    assert open_thursday["open_now"] is True
    assert open_thursday["closes_at"] == "2026-06-18T17:00:00+03:00"
    assert open_thursday["next_opening"] == "2026-06-22T09:00:00+03:00"


def test_long_closures_and_all_day_opening(polku: Polku) -> None:
    # No weekly hours; one opening day six weeks ahead (past the first two weeks looked at).
    store(
        polku,
        "POPUP",
        {},
        exceptions=[{"date": "2026-08-01", "hours": [["10:00", "16:00"]], "note": "Pop-up day"}],
    )
    waiting = status(polku, "POPUP", "2026-06-20T12:00:00+03:00")
    assert waiting["open_now"] is False
    assert waiting["next_opening"] == "2026-08-01T10:00:00+03:00"
    assert status(polku, "POPUP", "2026-08-02T12:00:00+03:00")["next_opening"] is None
    # Open around the clock: it never closes within a year, unless an exception says so.
    store(
        polku,
        "ALWAYS",
        {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    )
    always = status(polku, "ALWAYS", "2026-06-20T12:00:00+03:00")
    assert always["open_now"] is True and always["closes_at"] is None
    assert always["next_opening"] is None
    response = polku.client.post(
        "/v1/locations/ALWAYS/exceptions",
        json={"exceptions": [{"date": "2026-06-25", "hours": [["00:00", "18:00"]]}]},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    always = status(polku, "ALWAYS", "2026-06-20T12:00:00+03:00")
    assert always["closes_at"] == "2026-06-25T18:00:00+03:00"
    assert always["next_opening"] == "2026-06-26T00:00:00+03:00"


def test_hours_in_another_time_zone(polku: Polku) -> None:
    store(
        polku,
        "STO",
        WEEKDAYS_9_TO_21,
        timezone="Europe/Stockholm",
        country="SE",
        postal_code="111 22",
        city="Stockholm",
        latitude=59.3326,
        longitude=18.0649,
    )
    # 09:30 in Helsinki is 08:30 in Stockholm: not open yet there.
    early = status(polku, "STO", "2026-05-13T09:30:00+03:00")
    assert early["open_now"] is False
    assert early["next_opening"] == "2026-05-13T09:00:00+02:00"
    assert early["at"] == "2026-05-13T08:30:00+02:00"


def test_the_week_as_stored_and_read_back(polku: Polku) -> None:
    hours = {
        "mon": [["14:00", "18:00"], ["08:00", "12:00"]],
        "fri": [["22:00", "24:00"]],
        "sat": [["00:00", "03:00"]],
    }
    create(polku, {**KAMPPI, "hours": hours})
    response = polku.client.get(f"/v1/locations/{KAMPPI['location_id']}", headers=polku.admin)
    assert response.status_code == 200, response.text
    week = response.json()["hours"]
    assert week["mon"] == [["08:00", "12:00"], ["14:00", "18:00"]]
    assert week["fri"] == [["22:00", "24:00"]] and week["sat"] == [["00:00", "03:00"]]
    assert week["sun"] == [] and set(week) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    # Friday 22:00 to Saturday 03:00 touch at midnight: one opening.
    friday = status(polku, str(KAMPPI["location_id"]), "2026-05-15T23:00:00+03:00")
    assert friday["closes_at"] == "2026-05-16T03:00:00+03:00"
    # Replacing the week.
    response = polku.client.put(
        f"/v1/locations/{KAMPPI['location_id']}/hours",
        json={"sun": [["12:00", "16:00"]]},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["hours"]["mon"] == [] and response.json()["hours"]["sun"] == [
        ["12:00", "16:00"]
    ]


def test_bad_hours_are_refused_with_the_field(polku: Polku) -> None:
    create(polku, KAMPPI)
    path = f"/v1/locations/{KAMPPI['location_id']}/hours"
    cases: list[tuple[Any, str]] = [
        ({"mon": [["09:00", "12:00"], ["11:00", "18:00"]]}, "hours.mon[1]"),
        ({"fri": [["22:00", "03:00"]], "sat": [["02:00", "10:00"]]}, "hours.fri[0]"),
        ({"sun": [["23:00", "01:00"]], "mon": [["00:30", "08:00"]]}, "hours.sun[0]"),
        ({"mon": [["9", "17:00"]]}, "hours.mon[0][0]"),
        ({"mon": [["25:00", "17:00"]]}, "hours.mon[0][0]"),
        ({"mon": [["09:00", "24:30"]]}, "hours.mon[0][1]"),
        ({"mon": [["09:00", "09:00"]]}, "hours.mon[0]"),
        ({"mon": [["09:00"]]}, "hours.mon[0]"),
        ({"monday": [["09:00", "17:00"]]}, "hours.monday"),
    ]
    for body, field in cases:
        error = refused(polku.client.put(path, json=body, headers=polku.admin), 400, field)
        assert error["code"] == "invalid_field"
    refused(
        polku.client.post(
            f"/v1/locations/{KAMPPI['location_id']}/exceptions",
            json={"exceptions": [{"date": "2026-02-30", "closed": True}]},
            headers=polku.admin,
        ),
        400,
        "exceptions[0].date",
    )
    refused(
        polku.client.post(
            f"/v1/locations/{KAMPPI['location_id']}/exceptions",
            json={"exceptions": [{"date": "2026-12-24"}]},
            headers=polku.admin,
        ),
        400,
        "exceptions[0].hours",
    )
    refused(
        polku.client.get(
            f"/v1/locations/{KAMPPI['location_id']}/status",
            params={"at": "tomorrow"},
            headers=polku.admin,
        ),
        400,
        "at",
    )
    refused(
        polku.client.get("/v1/locations/NOWHERE/status", headers=polku.admin), 404, "location_id"
    )
    refused(
        polku.client.put("/v1/locations/NOWHERE/hours", json={}, headers=polku.admin),
        404,
        "location_id",
    )


def test_many_statuses_in_one_call(polku: Polku) -> None:
    """The Python API the availability code calls: fifty locations, two queries."""
    for n in range(50):
        store(polku, f"S{n:02d}", SHOPPING_CENTRE if n % 2 else {"sat": [["10:00", "14:00"]]})
    at = datetime(2026, 5, 13, 10, 0, tzinfo=UTC)  # Wednesday 13:00 in Helsinki
    ids = [f"S{n:02d}" for n in range(50)] + ["MISSING"]
    with polku.runtime.engine.connect() as conn:
        found = opening_statuses(conn, "default", ids, at)
    assert set(found) == set(ids) - {"MISSING"}
    assert all(found[f"S{n:02d}"].open_now for n in range(1, 50, 2))
    saturday = found["S00"].next_opening
    assert not found["S00"].open_now and saturday is not None
    assert saturday.isoformat() == "2026-05-16T10:00:00+03:00"


def test_the_pure_function_needs_no_database() -> None:
    week = parse_week({"fri": [["22:00", "02:00"]]})
    holiday = DayException(datetime(2026, 5, 22).date(), (), "Closed for stocktaking")
    schedule = Schedule("Europe/Helsinki", week, {holiday.day: holiday})
    friday = status_at(schedule, datetime(2026, 5, 15, 20, 0, tzinfo=UTC))  # 23:00 local
    assert friday.open_now and friday.closes_at is not None
    assert friday.closes_at.isoformat() == "2026-05-16T02:00:00+03:00"
    # The next Friday is closed, so the one after.
    assert friday.next_opening is not None
    assert friday.next_opening.isoformat() == "2026-05-29T22:00:00+03:00"
    # A naive instant is read as UTC.
    assert status_at(schedule, datetime(2026, 5, 15, 20, 0)) == friday
