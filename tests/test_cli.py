"""The CLI contract: doctor, bench --json, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kqv_demo", *args],
        capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_doctor_passes_and_reports_a_real_forward_pass():
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed." in result.stdout
    assert "-> ' Paris'" in result.stdout
    assert "hash matches the package RECORD" in result.stdout


@pytest.mark.parametrize(
    "variable,value,fix",
    [
        ("KQV_SMOLLM2_GGUF", "/nonexistent/SmolLM2.gguf", "unset KQV_SMOLLM2_GGUF"),
        ("KQV_MINILM_DIR", "/nonexistent/minilm", "unset KQV_MINILM_DIR"),
    ],
)
def test_doctor_names_a_missing_model_and_its_fix(variable: str, value: str, fix: str):
    result = run_cli("doctor", env={variable: value})
    assert result.returncode == 1
    assert "FAIL" in result.stdout and value in result.stdout
    assert f"fix: {fix}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_list_json():
    rows = json.loads(run_cli("demo", "--list", "--json").stdout)
    assert {"id": "attention-by-hand"}.items() <= rows[0].items()


def test_demo_runs_with_its_defaults_and_matches_the_model():
    result = run_cli("demo", "attention-by-hand", "--json", "--layer", "6", "--head", "2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["params"] == {"layer": 6, "head": 2, "scaled": True, "masked": True}
    assert data["result"]["max_abs_diff"] <= 1e-5
    assert data["result"]["kv_head"] == 0
    assert len(data["result"]["model_weights"]) == len(data["result"]["tokens"])


def test_demo_bad_input_is_a_message_not_a_traceback():
    result = run_cli("demo", "attention-by-hand", "--layer", "99")
    assert result.returncode == 2
    assert "Layer 99 is out of range: choose from 0 to 29" in result.stderr
    assert "Traceback" not in result.stderr
    unknown = run_cli("demo", "no-such-demo")
    assert unknown.returncode == 2 and "Unknown demo" in unknown.stderr


@pytest.mark.slow
def test_bench_json_has_the_contract_keys():
    result = run_cli("bench", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("smollm2_first_load_s", "smollm2_cached_load_s", "minilm_load_s",
                "trace_ms_p50_32tok", "trace_ms_p50_256tok", "rss_mb_both_models", "validate_s",
                "forward_ms_p50_32tok", "forward_ms_p50_256tok", "smollm2_cached_over_first_load"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["smollm2_first_load_s"] > figures["smollm2_cached_load_s"]
    assert figures["trace_ms_p50_256tok"] > figures["trace_ms_p50_32tok"]
    assert figures["demo_ms_p50"]["attention-by-hand"] > 0
    for tokens in (32, 256):  # ratios measured in the same run, so they compare across CPUs
        assert figures[f"trace_overhead_{tokens}tok"] == pytest.approx(
            figures[f"trace_ms_p50_{tokens}tok"] / figures[f"forward_ms_p50_{tokens}tok"], abs=0.01)
    assert set(figures["demo_forward_units"]) == set(figures["demo_ms_p50"])
    assert figures["demo_forward_units"]["attention-by-hand"] == pytest.approx(
        figures["demo_ms_p50"]["attention-by-hand"] / figures["forward_ms_p50_32tok"], abs=0.01)
    assert "AVX-512" in figures["cpu"]  # says which kind of CPU of this machine kind gave the figures
    assert figures["python"].startswith("3.") and figures["torch"] and figures["transformers"]
    assert figures["class30_errors"] == 0 and 0 < figures["class30_p50_ms"] <= figures["class30_p95_ms"]
    assert figures["class30_answers_stored"] == figures["class30_answers_expected"] == 300
    assert figures["chat_under_load_busy_ms"] > 0 and figures["chat_under_load_quiet_ms"] > 0
    for fmt in ("moodle", "gift", "html", "pdf"):
        assert figures[f"export_core10_{fmt}_s"] > 0, fmt
    assert figures["export_core10_demo_runs_s"] > 0
    assert figures["chat_slowdown_under_load"] == pytest.approx(
        figures["chat_under_load_busy_ms"] / figures["chat_under_load_quiet_ms"], rel=0.01)


def test_ask_jsonl_answers_every_line_and_survives_blank_ones():
    lines = "so attention uses KL divergence, right?\n\n" + "x" * 20000 + "\nWhat's a good lasagna recipe?\n"
    result = subprocess.run(
        [sys.executable, "-m", "kqv_demo", "ask", "--jsonl"], input=lines, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(replies) == 4
    assert set(replies[0]) == {"text", "stance", "rule", "statement", "claim_id", "verdict", "topics", "score",
                               "answer"}
    assert replies[0]["stance"] == "refute" and replies[0]["verdict"] == "false"
    assert replies[1]["stance"] == "decline" and replies[3]["stance"] == "decline"
    assert "Traceback" not in result.stderr


def test_the_export_command_reads_its_formats_and_their_help_from_the_registry_without_torch():
    from kqv_demo.exports import FORMATS

    shown = run_cli("export", "--help")
    assert shown.returncode == 0
    for fmt in FORMATS.values():
        assert f"{fmt.name:8} {fmt.label}: {fmt.help}" in shown.stdout
    refused = run_cli("export", "--round", "core-10", "--format", "docx", "-o", "x.docx")
    assert refused.returncode == 2 and "invalid choice: 'docx'" in refused.stderr
    script = "import sys; from kqv_demo.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
