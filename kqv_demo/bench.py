"""`python -m kqv_demo bench --json`: the speed and memory figures the issues set targets for."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PASSAGE = (
    "Attention lets every token in a sentence look back at the tokens before it. "
    "Each token makes a query, a key and a value; the query is compared with every key "
    "by a dot product, the scores go through a softmax, and the weights mix the values. "
)


def median_ms(run: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def about_32_tokens(runtime, prompt: str) -> str:
    """The demo's own prompt, lengthened in front to at least 32 tokens (its words stay last)."""
    lead = "Here is one more sentence for the model to read. "
    if not prompt.strip():
        return prompt  # a demo that reads no prompt (e.g. the depth table)
    while len(runtime.tokenize(prompt)[0]) < 32:
        prompt = lead + prompt
    return prompt


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def rss_probe() -> float:
    """Resident memory of a fresh process with both models loaded and one trace run."""
    from kqv_demo.runtime import load_runtime

    runtime = load_runtime()
    runtime.trace(PASSAGE * 10, max_tokens=32)
    return rss_mb()


def _app_figures() -> dict[str, object]:
    """Quiz rerun time and a class of 30 (kqv_demo/ui/app_figures.py): they need Streamlit, which the
    library does not import, so they are measured in a process of their own."""
    command = [sys.executable, "-m", "kqv_demo.ui.app_figures"]
    output = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _measure_rss(cache_root: Path) -> float:
    env = {**os.environ, "KQV_CACHE_DIR": str(cache_root)}
    output = subprocess.run(
        [sys.executable, "-m", "kqv_demo", "bench", "--rss-probe"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def chat_dev_scores(runtime) -> dict[str, object]:
    """The explainer chat on its dev set: median ms per message (after warm-up) and the scores; and the
    seconds its stance model took to train (at build time, once per bank change: recorded in the cache)."""
    from kqv_demo.content.loader import load_bank
    from kqv_demo.explainer.chat import Explainer
    from kqv_demo.explainer.evaluate import load_eval_set, run_eval
    from kqv_demo.explainer.stance_model import build
    from kqv_demo.stress import chat_under_load

    bank = load_bank(dialogue=False)
    model, facts = build(bank)  # trained now if the bank changed since the last build, else cached
    explainer = Explainer(bank, runtime, stance_model=model)
    _replies, scores, median = run_eval(explainer, load_eval_set())
    scores.pop("messages")
    load = chat_under_load.measure(explainer, bank, runtime)
    return {"chat_ms_p50": median, "chat_model_build_s": facts.get("seconds"), "chat_model_pairs": facts["pairs"],
            **{f"chat_dev_{name}": value for name, value in scores.items()},
            # target: at most chat_under_load.SLOWDOWN_TARGET (a hostile visitor and an export running)
            "chat_slowdown_under_load": load["slowdown"], "chat_under_load_quiet_ms": load["quiet_ms"],
            "chat_under_load_busy_ms": load["busy_ms"]}


def validate_seconds(repeats: int = 3) -> float:
    """`python -m kqv_demo validate` on the whole bank, in a fresh process (median of `repeats`): checking
    the bank must not pay for torch (issue #15: at most 2 s)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kqv_demo", "validate"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def plain_forward_ms(runtime, text: str, tokens: int, repeats: int) -> float:
    """SmolLM2's own forward pass on the same tokens a trace reads, with no hook recorder: the unit that
    makes figures from CPUs of one machine kind comparable (a trace or a demo in forward passes)."""
    import torch

    ids = torch.tensor([runtime.tokenize(text, max_tokens=tokens)[0]])
    model = runtime.smollm2.model  # the bench measures the runtime itself, so it may reach inside it

    def forward() -> None:
        with torch.inference_mode():
            model(ids)

    return median_ms(forward, repeats)


def cpu_name() -> str:
    """The CPU's model name and whether it has AVX-512 (figures differ across this machine kind's CPUs)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                "unknown")
    return f"{name} ({'AVX-512' if ' avx512f' in info else 'no AVX-512'})"


def export_figures(runtime, scratch: Path) -> dict[str, object]:
    """Core 10 exported (issue #14): Moodle XML and GIFT from the command line, in a fresh process, since
    their cost is mostly start-up (they need no model, and must not import torch); the HTML and PDF
    handouts in this process from an empty figure cache, against the sum of their distinct demo runs."""
    from kqv_demo.content.loader import load_bank
    from kqv_demo.exports import build_export
    from kqv_demo.exports.live import RUNS, compute_run, runs_needed
    from kqv_demo.classroom.resolve import resolve_round
    from kqv_demo.quiz.resolve import round_items

    figures: dict[str, object] = {}
    for fmt in ("moodle", "gift"):
        command = [sys.executable, "-m", "kqv_demo", "export", "--round", "core-10", "--format", fmt,
                   "-o", str(scratch / f"core-10.{fmt}")]
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        figures[f"export_core10_{fmt}_s"] = round(time.perf_counter() - started, 2)
    bank = load_bank(dialogue=False)
    spec = resolve_round(bank, "core-10")
    items = round_items(bank, spec)
    claim_runs, prediction_runs = runs_needed(bank, items, figures=True)
    started = time.perf_counter()
    for key in set(claim_runs.values()) | set(prediction_runs.values()):
        compute_run(runtime, key).figure()
    figures["export_core10_demo_runs_s"] = round(time.perf_counter() - started, 2)
    for fmt in ("html", "pdf"):
        RUNS.clear()  # each handout from scratch: what the first export of the day costs
        started = time.perf_counter()
        build_export(bank, spec, items, fmt, runtime)
        figures[f"export_core10_{fmt}_s"] = round(time.perf_counter() - started, 2)
    return figures


def run(progress: Callable[[str], None] = lambda message: None) -> dict[str, object]:
    from kqv_demo import runtime as rt

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kqv-bench-") as scratch:
        cache_root = Path(scratch)
        rt.use_all_threads()
        progress("first SmolLM2 load (converts the GGUF)")
        results["smollm2_first_load_s"] = round(rt.load_smollm2(cache_root).load_seconds, 2)
        progress("cached SmolLM2 load")
        smollm2 = rt.load_smollm2(cache_root)
        results["smollm2_cached_load_s"] = round(smollm2.load_seconds, 2)
        results["smollm2_cached_over_first_load"] = round(
            results["smollm2_cached_load_s"] / results["smollm2_first_load_s"], 3)
        progress("MiniLM load")
        minilm = rt.load_minilm()
        results["minilm_load_s"] = round(minilm.load_seconds, 2)
        runtime = rt.Runtime(smollm2, minilm)
        long_text = PASSAGE * 10
        for tokens, repeats in ((32, 21), (256, 7)):
            progress(f"full trace, {tokens} tokens")
            results[f"trace_ms_p50_{tokens}tok"] = median_ms(
                lambda tokens=tokens: runtime.trace(long_text, max_tokens=tokens), repeats
            )
            results[f"forward_ms_p50_{tokens}tok"] = plain_forward_ms(runtime, long_text, tokens, repeats)
            # goal <= 1.15: recording every hook point costs little beyond the pass itself
            results[f"trace_overhead_{tokens}tok"] = round(
                results[f"trace_ms_p50_{tokens}tok"] / results[f"forward_ms_p50_{tokens}tok"], 2)
        results["demo_ms_p50"] = {}
        from kqv_demo.demos import DEMOS

        for demo in DEMOS.values():
            progress(f"demo {demo.id}")
            prompt = about_32_tokens(runtime, demo.default_prompt)
            results["demo_ms_p50"][demo.id] = median_ms(
                lambda demo=demo, prompt=prompt: demo.run(runtime, prompt), 5, warmup=1
            )
        # each demo in plain 32-token forward passes: comparable across CPUs (goal <= 3 for a demo that
        # does not generate)
        results["demo_forward_units"] = {demo_id: round(ms / results["forward_ms_p50_32tok"], 2)
                                         for demo_id, ms in results["demo_ms_p50"].items()}
        progress("validate the bank in a fresh process")
        results["validate_s"] = validate_seconds()
        results.update(_app_figures())
        progress("exports of Core 10")
        results.update(export_figures(runtime, cache_root))
        progress("explainer chat on its dev set")
        results.update(chat_dev_scores(runtime))
        progress("memory of a fresh process with both models")
        results["rss_mb_both_models"] = _measure_rss(cache_root)
    results["python"] = platform.python_version()
    results["torch"] = metadata.version("torch")
    results["transformers"] = metadata.version("transformers")
    results["cpu_threads"] = os.cpu_count()
    results["cpu"] = cpu_name()
    return results


def as_json(results: dict[str, object]) -> str:
    return json.dumps(results, sort_keys=True)
