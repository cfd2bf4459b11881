"""The class load test: its limits, and real students (websocket clients) against real servers: one on
SQLite, and two app processes sharing one PostgreSQL (every answer stored once, both dashboards right)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from kqv_demo.errors import KqvError, UserInputError
from kqv_demo.ui.loadtest import (
    DashboardView, Stuck, Student, _next_step, check_dashboards, check_limits, item_of_form, loopback_url,
    run_class,
)
from kqv_demo.settings import PROJECT_ROOT
from kqv_demo.ui.wire_client import Page, Widget
from tests.conftest import fresh_postgres_database, postgres_server_url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8501", "http://localhost:8501/", "http://[::1]:8501",
                                 "https://127.0.0.2:9000"])
def test_loopback_urls_are_accepted(url: str):
    assert loopback_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://example.com:8501", "http://10.0.0.5:8501", "http://0.0.0.0:8501",
                                 "http://127.0.0.1.example.com", "ftp://127.0.0.1", "127.0.0.1:8501", ""])
def test_other_urls_are_refused(url: str):
    with pytest.raises(UserInputError):
        loopback_url(url)


@pytest.mark.parametrize("students,seconds,think,servers", [
    (0, 300, (1, 4), 1), (301, 300, (1, 4), 1), (30, 5, (1, 4), 1), (30, 1801, (1, 4), 1), (30, 300, (4, 1), 1),
    (30, 300, (-1, 2), 1), (30, 300, (1, 4), 0), (30, 300, (1, 4), 5),
])
def test_limits_are_enforced(students: int, seconds: float, think: tuple[float, float], servers: int):
    with pytest.raises(UserInputError):
        check_limits(students, seconds, think, servers)


def test_limits_allow_the_documented_range():
    check_limits(1, 10, (0, 0))
    check_limits(300, 1800, (1, 4), servers=4)


def test_a_dashboard_that_differs_from_the_database_is_an_error_naming_its_server():
    truth = DashboardView(server="database", joined=4, finished=3, answers=35)
    views = [DashboardView(server="127.0.0.1:1", joined=4, finished=3, answers=35),
             DashboardView(server="127.0.0.1:2", joined=4, finished=3, answers=20),
             DashboardView(server="127.0.0.1:3", problem="no dashboard figures")]
    errors = check_dashboards(views, truth)
    assert len(errors) == 2
    assert "127.0.0.1:2" in errors[0] and "4/3/20" in errors[0] and "4/3/35" in errors[0]
    assert "127.0.0.1:3" in errors[1] and "no dashboard figures" in errors[1]


def test_the_item_of_an_answer_form_comes_from_its_key():
    assert item_of_form("answer-Ab-3_x-core-kl.verdict", "Ab-3_x") == "core-kl.verdict"
    with pytest.raises(Stuck):
        item_of_form("answer-OTHER-core-kl.verdict", "Ab-3_x")


def test_an_exception_on_the_page_stops_the_student():
    page = Page(widgets=[Widget("button", "id-1", "Next question")], problems=["exception KeyError: 'r'"])
    with pytest.raises(Stuck, match="KeyError"):
        _next_step(Student(1, "Ada", random.Random(0)), tab=None, page=page)


def test_a_page_without_a_question_before_any_answer_is_an_error():
    page = Page(texts=["Something else entirely"])
    with pytest.raises(Stuck, match="Something else entirely"):
        _next_step(Student(1, "Ada", random.Random(0)), tab=None, page=page)


def test_cli_refuses_a_remote_server_without_a_traceback():
    result = subprocess.run([sys.executable, "-m", "kqv_demo", "class30", "--url", "http://example.com"],
                            capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False)
    assert result.returncode == 2
    assert "only runs against this machine" in result.stderr and "Traceback" not in result.stderr


def test_a_server_that_is_not_there_is_a_clear_error(tmp_path):
    with pytest.raises(KqvError, match="could not connect"):
        run_class(students=2, url="http://127.0.0.1:9", database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
                  seconds=10)


@pytest.mark.slow
def test_three_students_play_a_class_round_on_an_own_server():
    report = run_class(students=3, think=(0.1, 0.3), seconds=120)
    assert report.errors == 0, report.error_samples
    assert report.finished_students == 3
    assert report.answers_expected == 30  # core-10: ten questions each
    assert report.answers_stored == report.answers_expected and report.answers_duplicated == 0
    # open, name, then "Check my answer" and "Next question"/"See my results" per question
    assert report.interactions == 3 * (2 + 2 * 10)
    assert 0 < report.p50_ms <= report.p95_ms <= report.max_ms


@pytest.mark.slow
def test_cli_end_of_round_feedback_in_burst_mode():
    result = subprocess.run(
        [sys.executable, "-m", "kqv_demo", "class30", "--students", "2", "--burst", "--feedback", "end", "--json"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["answers_stored"] == report["answers_expected"] == 20
    assert report["interactions"] == 2 * (2 + 10)  # open, name, then one "Save my answer" per question


@pytest.mark.slow
def test_two_app_servers_on_one_postgresql_store_every_answer_once_and_agree_on_the_dashboard():
    """Students split between two app processes (no proxy), one PostgreSQL: every answer either server
    acknowledged is stored once, and each server's instructor dashboard shows the database's counts."""
    with fresh_postgres_database(postgres_server_url()) as database_url:
        report = run_class(students=6, servers=2, database_url=database_url, think=(0.1, 0.3), seconds=300)
    assert report.errors == 0, report.error_samples
    assert report.servers == 2 and report.database == "postgresql"
    assert report.answers_expected == 60  # core-10: ten questions each
    assert report.answers_stored == report.answers_expected and report.answers_duplicated == 0
    assert len({view.server for view in report.dashboards}) == 2
    assert all((view.joined, view.finished, view.answers) == (6, 6, 60) for view in report.dashboards)
    assert report.dashboards_agree
    assert all(p95 > 0 for p95 in report.server_p95_ms)  # both servers served students
