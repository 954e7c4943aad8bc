"""Scheduled workflows (SPEC 1.8) on the emulator's clock: each due time once, in order; a clock
set back re-arms; a broken CSV records its catalogue answer; the catch-up cap. Time moves only
through `/__mock/clock` (or a fake clock), never by sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, running

from mockserver.clock import MemoryClock
from mockserver.settings import ConfigError, Workflow, load_settings
from mockserver.workflows import (
    MAX_CATCH_UP,
    SKIP_COUNT_BOUND,
    MemoryRunBook,
    Outcome,
    Scheduler,
    due_times,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "workflows" / "example.toml"
HOUR = 3600
H = 1_700_000_000 // HOUR * HOUR  # an exact hour, in the past: setting the clock there re-arms
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"


# -- due times and the scheduler, on a fake run ---------------------------------------------------


def test_due_times_are_the_schedule_s_instants_in_the_span_oldest_first() -> None:
    assert due_times("*/15 * * * *", H, H + HOUR).times == [H + 900, H + 1800, H + 2700, H + HOUR]
    assert due_times("0 * * * *", H, H + HOUR - 1).times == []  # not reached yet
    assert due_times("0 * * * *", H + 0.5, H + 0.5).times == []


class Recorder:
    """A fake run: remembers each (workflow, instant) and answers ok."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, workflow: Workflow, at: float) -> Outcome:
        self.calls.append((workflow.name, at))
        return Outcome("ok", count=1)


def scheduler_at(start: float, schedule: str) -> tuple[Scheduler, MemoryClock, Recorder]:
    clock = MemoryClock()
    clock.set(start)
    run = Recorder()
    workflow = Workflow("w", CAMPAIGN, "unused.csv", schedule)
    return Scheduler([workflow], MemoryRunBook(clock), run), clock, run


def test_each_due_time_passed_runs_once_in_order() -> None:
    scheduler, clock, run = scheduler_at(H, "0 * * * *")
    clock.advance(3 * HOUR + 1800)
    assert scheduler.catch_up() == 3
    assert scheduler.catch_up() == 0  # looking again at the same reading fires nothing
    assert run.calls == [("w", H + HOUR), ("w", H + 2 * HOUR), ("w", H + 3 * HOUR)]


def test_a_clock_set_back_re_arms_from_where_it_is_set() -> None:
    scheduler, clock, run = scheduler_at(H, "0 * * * *")
    clock.advance(2 * HOUR)
    scheduler.catch_up()
    clock.set(H + 30)  # back: nothing fires, the schedule now counts from H + 30 s
    assert scheduler.catch_up() == 0
    clock.set(H + HOUR)
    scheduler.catch_up()
    assert [at for _, at in run.calls] == [H + HOUR, H + 2 * HOUR, H + HOUR]


def test_a_day_of_minutes_fires_the_last_thousand_and_counts_the_rest() -> None:
    scheduler, clock, run = scheduler_at(H, "* * * * *")
    clock.advance(24 * HOUR)
    assert scheduler.catch_up() == MAX_CATCH_UP
    assert [at for _, at in run.calls] == [H + 60 * m for m in range(1441 - MAX_CATCH_UP, 1441)]
    skipped = scheduler.book.runs("w")[0][0]
    assert skipped["status"] == "skipped"
    assert skipped["count"] == 1440 - MAX_CATCH_UP
    assert skipped["at"] == H + 60


def test_a_year_of_minutes_is_bounded_work_in_one_look() -> None:
    scheduler, clock, run = scheduler_at(H, "* * * * *")
    clock.advance(365 * 24 * HOUR)
    assert scheduler.catch_up() == MAX_CATCH_UP  # not 525,600 runs
    assert run.calls[-1] == ("w", H + 365 * 24 * HOUR)
    skipped = scheduler.book.runs("w")[0][0]
    assert skipped["count"] is None and f"more than {SKIP_COUNT_BOUND}" in skipped["reason"]


def test_two_workflows_of_one_name_are_a_config_error() -> None:
    workflow = Workflow("twice", CAMPAIGN, "a.csv", "0 * * * *")
    with pytest.raises(ConfigError, match="'twice' given twice"):
        Scheduler([workflow, workflow], MemoryRunBook(MemoryClock()), Recorder())


def test_a_relative_source_is_read_beside_the_config_file() -> None:
    (workflow,) = load_settings(EXAMPLE).workflows
    assert workflow.source == str(EXAMPLE.parent / "customers.csv")


# -- the emulator: real runs through the admin API -------------------------------------------------


def write_config(folder: Path, campaign: str = CAMPAIGN, extra: str = "", **sources: str) -> Path:
    """A config whose workflows (name → source) each run hourly for `campaign`."""
    text = extra + "".join(
        f'[[workflows]]\nname = "{name}"\ncampaign = "{campaign}"\nsource = "{source}"\n'
        'schedule = "0 * * * *"\n'
        for name, source in sources.items()
    )
    path = folder / "config.toml"
    path.write_text(text)
    return path


@pytest.fixture
def example() -> Iterator[Api]:
    with running(load_settings(EXAMPLE)) as (api, _):
        yield api


def admin(api: Api, method: str, name: str, body: Any = None) -> Any:
    answer = api.request(method, f"/__mock/{name}", json=body)
    assert answer.status_code < 300, answer.text
    return answer.json()


def runs(api: Api, name: str = "hourly") -> list[dict[str, Any]]:
    (shown,) = [w for w in admin(api, "GET", "workflows")["workflows"] if w["name"] == name]
    return shown["runs"]  # type: ignore[no-any-return]


def workflow_entries(api: Api) -> list[dict[str, Any]]:
    entries = admin(api, "GET", "requests?limit=1000")["requests"]
    return [entry for entry in entries if entry.get("trigger") == "workflow"]


def test_advancing_past_due_times_shares_the_csv_at_each_once_in_order(example: Api) -> None:
    admin(example, "POST", "clock", {"set": H})
    admin(example, "POST", "clock", {"advance": 3 * HOUR + 1800})
    assert [(r["at"], r["status"], r["count"]) for r in runs(example)] == [
        (H + HOUR, "ok", 2),
        (H + 2 * HOUR, "ok", 2),
        (H + 3 * HOUR, "ok", 2),
    ]
    sharings = admin(example, "GET", "sharings")["sharings"]
    assert [s["email"] for s in sharings] == ["ayse@example.com", "john@example.com"] * 3
    assert sharings[0]["custom_attributes"] == {"name": "Ayşe Yılmaz", "segment": "gold"}
    assert [e["status"] for e in workflow_entries(example)] == [200, 200, 200]
    assert {s["trigger"] for s in sharings} == {"workflow"}
    (shown,) = admin(example, "GET", "workflows")["workflows"]
    assert shown["next_run"] == H + 4 * HOUR and shown["schedule"] == "0 * * * *"


def test_setting_the_clock_back_re_arms_the_schedule(example: Api) -> None:
    admin(example, "POST", "clock", {"set": H})
    admin(example, "POST", "clock", {"advance": HOUR})
    admin(example, "POST", "clock", {"set": H - 60})
    assert len(runs(example)) == 1
    admin(example, "POST", "clock", {"advance": 60 + HOUR})
    assert [r["at"] for r in runs(example)] == [H + HOUR, H, H + HOUR]


def test_a_run_now_and_an_unknown_name(example: Api) -> None:
    admin(example, "POST", "clock", {"set": H + 42})
    answer = admin(example, "POST", "workflows/hourly/run", {})
    assert answer["run"] == {
        "at": H + 42,
        "trigger": "manual",
        "status": "ok",
        "count": 2,
        "code": None,
        "reason": None,
    }
    missing = example.request("POST", "/__mock/workflows/nope/run", json={})
    assert missing.status_code == 404
    assert missing.json() == {"status": "not_found", "reason": "name: no workflow 'nope'"}


def test_reset_empties_the_runs_and_re_arms_from_the_clock(example: Api) -> None:
    admin(example, "POST", "clock", {"set": H})
    admin(example, "POST", "clock", {"advance": 2 * HOUR})
    admin(example, "POST", "reset", {})
    assert runs(example) == []  # the real clock is now years past H: nothing fires on reset


def test_a_broken_csv_records_its_catalogue_answer(tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_text('email,name\n"a@example.com,unterminated\n')
    config = write_config(tmp_path, missing="absent.csv", ragged="ragged.csv")
    with running(load_settings(config)) as (api, _):
        admin(api, "POST", "clock", {"set": H})
        admin(api, "POST", "clock", {"advance": HOUR})
        (missing,) = runs(api, "missing")
        assert missing["status"] == "refused" and missing["code"] == 13037
        assert str(tmp_path / "absent.csv") in missing["reason"]
        (ragged,) = runs(api, "ragged")
        assert (ragged["status"], ragged["code"], ragged["count"]) == ("refused", 13037, None)
        entries = workflow_entries(api)
        assert [(e["workflow"], e["status"], e["code"]) for e in entries] == [
            ("missing", 400, 13037),
            ("ragged", 400, 13037),
        ]
        assert admin(api, "GET", "sharings")["sharings"] == []


def test_a_running_clock_is_watched_by_the_ticker(example: Api) -> None:
    admin(example, "POST", "clock", {"set": H, "rate": 36_000})  # 10 hours per real second
    deadline = time.monotonic() + 10
    while not workflow_entries(example):  # the journal: reading it looks at no schedule
        assert time.monotonic() < deadline, "the ticker fired nothing in 10 s"
        time.sleep(0.05)  # waiting for the ticker thread, not for the throttle or a due time
    assert workflow_entries(example)[0]["body"]["due"] == H + HOUR


def test_rows_without_their_identity_key_record_13038_naming_them(tmp_path: Path) -> None:
    (tmp_path / "gaps.csv").write_text("email,name\na@example.com,A\n,B\nc@example.com,C\n,D\n")
    with running(load_settings(write_config(tmp_path, gaps="gaps.csv"))) as (api, _):
        admin(api, "POST", "clock", {"set": H})
        admin(api, "POST", "clock", {"advance": HOUR})
        (run,) = runs(api, "gaps")
        assert (run["status"], run["code"]) == ("refused", 13038)
        assert "3" in run["reason"] and "5" in run["reason"]


def test_a_file_larger_than_an_upload_may_be_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_text("email\n" + "x@example.com\n" * 100)
    config = write_config(tmp_path, extra="[bounds]\nmax_body_bytes = 1000\n", big="big.csv")
    with running(load_settings(config)) as (api, _):
        run = admin(api, "POST", "workflows/big/run", {})["run"]
        assert (run["status"], run["code"]) == ("refused", 13000)
        assert "max_body_bytes" in run["reason"]


def test_an_sms_campaign_s_workflow_shares_its_numbers(tmp_path: Path) -> None:
    (tmp_path / "phones.csv").write_text(
        "phone_number,name\n5551234567,Ayse\n+90 555 765 4321,Can\n"
    )
    config = write_config(tmp_path, campaign=SMS_CAMPAIGN, texts="phones.csv")
    with running(load_settings(config)) as (api, _):
        run = admin(api, "POST", "workflows/texts/run", {})["run"]
        assert (run["status"], run["count"]) == ("ok", 2)
        sharings = admin(api, "GET", "sharings")["sharings"]
        assert {(s["channel"], s["trigger"]) for s in sharings} == {("sms", "workflow")}
