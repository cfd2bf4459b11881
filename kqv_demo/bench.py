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


def export_figures(runtime, scratch: Path) -> dict[str, object]:
    """Core 10 exported (issue #14): Moodle XML and GIFT from the command line, in a fresh process, since
    their cost is mostly start-up (they need no model, and must not import torch); the HTML and PDF
    handouts in this process from an empty figure cache, against the sum of their distinct demo runs."""
    from kqv_demo.content.loader import load_bank
    from kqv_demo.exports import build_export
    from kqv_demo.exports.live import RUNS, compute_run, runs_needed
    from kqv_demo.quiz.resolve import resolve_round, round_items

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
        results["demo_ms_p50"] = {}
        from kqv_demo.demos import DEMOS

        for demo in DEMOS.values():
            progress(f"demo {demo.id}")
            prompt = about_32_tokens(runtime, demo.default_prompt)
            results["demo_ms_p50"][demo.id] = median_ms(
                lambda demo=demo, prompt=prompt: demo.run(runtime, prompt), 5, warmup=1
            )
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
    return results


def as_json(results: dict[str, object]) -> str:
    return json.dumps(results, sort_keys=True)
