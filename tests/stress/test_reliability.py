"""The `stress` command: every measurement's bar, the JSON it prints, and how a measurement that cannot
run is reported (the measurements themselves are tested in tests/ui and tests/stress)."""

from __future__ import annotations

import json

import pytest

from kqv_demo import cli
from kqv_demo.stress import reliability, service

KILL9_OK = {"kills": 20, "answers_acknowledged": 120, "answers_lost": 0, "resumes": 120, "resume_failures": 0,
            "errors": 0, "error_samples": []}
VISITOR_OK = {"students": 30, "quiet": {"p95_ms": 50.0}, "hostile": {"p95_ms": 80.0}, "p95_ratio": 1.6, "errors": 0}
TWO_OK = {"students": 200, "servers": 2, "database": "postgresql", "p50_ms": 30.0, "p95_ms": 90.0, "errors": 0,
          "error_samples": [], "answers_expected": 2000, "answers_stored": 2000, "answers_duplicated": 0,
          "dashboards_agree": True}


def figures(**changes) -> dict:
    base = {
        "sizes": "full",
        "yaml_fuzz": {"files": 1000, "crashes": 0, "tracebacks": 0, "errors_without_line": 0,
                      "max_seconds_per_file": 1.0},
        "hostile_text": {"messages": 1000, "exceptions": 0, "links_rendered": 0, "p95_ms": 100.0, "max_ms": 300.0},
        "kill9_sqlite": dict(KILL9_OK), "kill9_postgresql": dict(KILL9_OK),
        "hostile_visitor": dict(VISITOR_OK), "two_servers_postgresql": dict(TWO_OK),
    }
    for name, change in changes.items():
        base[name] = change if "skipped" in change or "error" in change else {**base[name], **change}
    return base


def test_every_bar_met_is_no_failure():
    assert reliability.failures(figures()) == []


@pytest.mark.parametrize("name,change,expected", [
    ("yaml_fuzz", {"crashes": 2}, "2 crashes"),
    ("yaml_fuzz", {"errors_without_line": 1}, "without file:line"),
    ("hostile_text", {"exceptions": 1}, "1 exceptions"),
    ("hostile_text", {"links_rendered": 2}, "2 links or images rendered"),
    ("kill9_sqlite", {"answers_lost": 1}, "1 acknowledged answers lost"),
    ("kill9_postgresql", {"resume_failures": 3}, "3 rounds did not resume"),
    ("hostile_visitor", {"p95_ratio": 2.4}, "2.4x the quiet run"),
    ("two_servers_postgresql", {"answers_stored": 1000}, "1000 of 2000 answers stored"),
    ("two_servers_postgresql", {"dashboards_agree": False}, "dashboards disagree"),
    ("kill9_sqlite", {"error": "crash_drill exited with code 2"}, "exited with code 2"),
])
def test_each_missed_bar_is_named(name: str, change: dict, expected: str):
    found = reliability.failures(figures(**{name: change}))
    assert len(found) == 1 and found[0].startswith(name) and expected in found[0]


def test_a_skipped_measurement_is_not_a_failure_and_says_why():
    skipped = figures(two_servers_postgresql={"skipped": "no PostgreSQL: not installed"})
    assert reliability.failures(skipped) == []
    assert any("no PostgreSQL" in line for line in reliability.summary_lines(skipped))


def test_a_process_that_prints_no_result_is_an_error_not_a_crash():
    result = service.own_process_json("kqv_demo.stress.reliability", [])  # refuses: --postgres-part is required
    assert "error" in result and "exited with code 2" in result["error"]


def test_stress_prints_one_json_object_and_fails_when_a_bar_is_missed(monkeypatch, capsys):
    measured = []

    def fake_measure(quick, database_url, progress, postgres=True):
        measured.append((quick, database_url))
        result = figures(kill9_sqlite={"answers_lost": 2})
        result["failures"] = reliability.failures(result)
        return result

    monkeypatch.setattr(reliability, "measure", fake_measure)
    assert cli.main(["stress", "--json", "--quick", "--database-url", "postgresql+psycopg://x/y"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["reliability"] and printed["reliability"]["kill9_sqlite"]["answers_lost"] == 2
    assert printed["reliability"]["failures"] == ["kill9_sqlite: 2 acknowledged answers lost"]
    assert measured == [(True, "postgresql+psycopg://x/y")]


def test_without_postgresql_the_postgresql_runs_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.delenv(reliability.POSTGRES_VARIABLE, raising=False)
    monkeypatch.setattr(reliability, "throwaway_postgres_problem", lambda: "PostgreSQL is not installed")
    found = reliability._postgres_figures(reliability.QUICK, None, lambda step: None)
    assert found == {"kill9_postgresql": {"skipped": "no PostgreSQL: PostgreSQL is not installed"},
                     "two_servers_postgresql": {"skipped": "no PostgreSQL: PostgreSQL is not installed"}}
