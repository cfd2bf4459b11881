"""Command line: `python -m kqv_demo COMMAND`. Run with --help for the list."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence

from kqv_demo.errors import KqvError


def _doctor(args: argparse.Namespace) -> int:
    from kqv_demo import doctor

    checks = doctor.run_checks()
    print(doctor.report(checks))
    return 0 if all(check.ok for check in checks) else 1


def _bench(args: argparse.Namespace) -> int:
    from kqv_demo import bench

    if args.rss_probe:
        print(bench.rss_probe())
        return 0
    results = bench.run(progress=lambda step: print(f"bench: {step}...", file=sys.stderr, flush=True))
    if args.json:
        print(bench.as_json(results))
    else:
        for key, value in sorted(results.items()):
            print(f"{key:28} {value}")
    return 0


def _demo_params(args: argparse.Namespace) -> dict[str, str]:
    params = {}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise KqvError(f"--param takes NAME=VALUE, not {item!r}.")
        params[name.strip()] = value
    if args.layer is not None:
        params["layer"] = args.layer
    if args.head is not None:
        params["head"] = args.head
    return params


def _demo(args: argparse.Namespace) -> int:
    from kqv_demo.demos import DEMOS
    from kqv_demo.demos.base import jsonable
    from kqv_demo.markup import plain

    if args.list or not args.id:
        from kqv_demo.content.loader import load_bank

        bank = load_bank(dialogue=False)
        rows = [
            {
                "id": demo.id, "title": demo.title, "summary": demo.summary,
                "claims": sorted(c.id for c in bank.claims.values() if c.demo and c.demo.id == demo.id),
                "params": [p.name for p in demo.params],
            }
            for demo in DEMOS.values()
        ]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        else:
            for row in rows:
                print(f"{row['id']:26} {row['title']}  ({len(row['claims'])} claims)")
        return 0
    demo = DEMOS.get(args.id)
    if demo is None:
        raise KqvError(f"Unknown demo {args.id!r}. Known: {', '.join(DEMOS)}.")
    from kqv_demo.runtime import shared_runtime

    runtime = shared_runtime()
    params = demo.check(runtime, _demo_params(args))
    prompt = args.prompt if args.prompt is not None else demo.default_prompt
    result = demo.compute(runtime, prompt, **params)
    truncation = getattr(result, "truncation", None)
    if truncation:
        print(truncation, file=sys.stderr)
    if args.png:
        chart = demo.chart(result)
        if chart is None:
            raise KqvError(f"{demo.title} has no chart to save.")
        chart.save(args.png, scale_factor=2) if args.png.endswith(".png") else chart.save(args.png)
        print(f"saved {args.png}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "id": demo.id, "prompt": prompt, "params": params,
            "headline": {plain(label): plain(value) for label, value in demo.headline(result)},
            "explanation": demo.explain(result),
            "result": jsonable(result),
        }, ensure_ascii=False))
    else:
        for label, value in demo.headline(result):
            print(f"{plain(label)}: {plain(value)}")
        print(demo.explain(result))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kqv_demo.content.loader import load_bank
    from kqv_demo.content.yamlfile import problem_count
    from kqv_demo.quiz.round_files import load_round_files, looks_like_round_file, rounds_dir

    path = Path(args.path) if args.path else None
    if path is not None and path.is_file() and looks_like_round_file(path):
        return _validate_round_file(path)
    bank = load_bank(path)
    rounds = load_round_files(bank, rounds_dir(path)) if path is None or path.is_dir() else None
    errors = bank.errors + (rounds.errors if rounds else [])
    for problem in errors:
        print(f"error: {problem}")
    for problem in bank.warnings:
        print(f"warning: {problem}")
    summary = f"{len(bank.claims)} claims and {len(bank.topics)} topic pages valid"
    if rounds is not None:
        summary += f", {len(rounds.specs)} round files valid"
    if errors:
        print(f"{summary}; {problem_count(errors)} error(s).")
        return 1
    print(f"{summary}; no errors.")
    return 0


def _validate_round_file(path) -> int:
    """`validate content/rounds/x.yaml`: the round file, checked against the claim bank."""
    from kqv_demo.content.loader import load_bank
    from kqv_demo.quiz.resolve import round_items
    from kqv_demo.content.yamlfile import problem_count
    from kqv_demo.quiz.round_files import load_round_file

    bank = load_bank(dialogue=False)
    spec, errors = load_round_file(bank, path)
    for problem in errors:
        print(f"error: {problem}")
    if spec is None:
        print(f"round file not valid; {problem_count(errors)} error(s).")
        return 1
    print(f"round file valid: {spec.id!r}, {len(round_items(bank, spec))} questions; no errors.")
    return 0


def _claims(args: argparse.Namespace) -> int:
    from kqv_demo.content.loader import load_bank

    bank = load_bank()
    rows = [
        {
            "id": claim.id, "verdict": claim.verdict, "topics": list(claim.topics), "core": claim.core,
            "demo": claim.demo.id if claim.demo else None, "quote": claim.quote,
            "speaker": claim.speaker, "line": bank.quote_lines.get(claim.id, claim.line),
        }
        for claim in bank.claims.values()
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for row in rows:
            print(f"{row['verdict']:7} {'core ' if row['core'] else '     '}{row['id']}")
    for problem in bank.errors:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if bank.errors else 0


def _export(args: argparse.Namespace) -> int:
    from kqv_demo.content.loader import load_bank
    from kqv_demo.exports import get_format, write_export
    from kqv_demo.classroom.resolve import resolve_round
    from kqv_demo.quiz.resolve import round_items

    fmt = get_format(args.format)
    bank = load_bank(dialogue=False)
    spec = resolve_round(bank, args.round)
    items = round_items(bank, spec)
    predictions = sum(item.kind == "predict" for item in items)
    if predictions:
        print(f"export: {predictions} prediction question(s): their answers are what the model does in this run",
              file=sys.stderr)
    path = write_export(bank, spec, items, fmt.name, args.output,
                        progress=lambda step: print(f"export: {step}...", file=sys.stderr, flush=True))
    print(f"wrote {path} ({fmt.label}): {len(items)} questions from round {spec.title!r}")
    return 0


def _ask(args: argparse.Namespace) -> int:
    from kqv_demo.explainer.chat import default_explainer

    if args.eval:
        from kqv_demo.explainer.evaluate import load_eval_set, meets_bar, run_eval

        expected = load_eval_set(args.eval)
        replies, scores, median = run_eval(default_explainer(), expected)
        scores["chat_ms_p50"] = median
        print(json.dumps({**scores, "meets_bar": meets_bar(scores)}, indent=2))
        return 0
    if args.jsonl:
        explainer = default_explainer()
        for line in sys.stdin:
            print(json.dumps(explainer.answer(line.rstrip("\n")).as_json(), ensure_ascii=False), flush=True)
        return 0
    message = " ".join(args.message)
    if args.small_model:
        from kqv_demo.explainer.small_model import ask_small_model
        from kqv_demo.runtime import shared_runtime

        small = ask_small_model(shared_runtime(), message)
        print("SmolLM2-135M-Instruct (UNVETTED, raw model output):")
        print(small.text)
        print("first-token probabilities: " + ", ".join(f"{token!r} {p:.3f}" for token, p in small.first_token_top))
        return 0
    reply = default_explainer().answer(message)
    for notice in reply.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"[{reply.stance}]" + (f" {reply.claim_id} ({reply.verdict})" if reply.claim_id else "")
          + (f"  topics: {', '.join(reply.topics)}" if reply.topics else ""))
    print(reply.answer)
    if reply.demo:
        prompt = f" --prompt {json.dumps(reply.demo.prompt)}" if reply.demo.prompt else ""
        print(f"\nRun the demo: python -m kqv_demo demo {reply.demo.id}{prompt}")
    return 0


def _build_stance(args: argparse.Namespace) -> int:
    """Train the chat's stance model from the bank and its training text (once per change; the cache makes
    reruns instant)."""
    from kqv_demo.content.loader import load_bank
    from kqv_demo.explainer.stance_model import build

    bank = load_bank(dialogue=False)
    last = [-1.0]

    def progress(message: str, fraction: float) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = fraction
            print(message, file=sys.stderr, flush=True)

    _model, facts = build(bank, progress=progress)
    if args.json:
        print(json.dumps(facts, indent=1))
    else:
        how = f"trained now in {facts['seconds']} s" if facts["trained_now"] else "already built (cached)"
        print(f"stance model {facts['key']}: {facts['pairs']} training pairs from the bank and its training "
              f"text, {how}")
    return 0


def _stress(args: argparse.Namespace) -> int:
    from kqv_demo.stress import reliability

    figures = reliability.measure(quick=args.quick, database_url=args.database_url,
                                  progress=lambda step: print(f"stress: {step}...", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps({"reliability": figures}, ensure_ascii=False))
    else:
        print("\n".join(reliability.summary_lines(figures)))
    return 1 if figures["failures"] else 0


def _in_own_process(module: str, args: list[str]) -> int:
    """Run a kqv_demo.ui module that speaks to Streamlit in a process of its own: the library never
    imports Streamlit."""
    return subprocess.call([sys.executable, "-m", module, *args])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kqv_demo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    doctor = commands.add_parser("doctor", help="check the installation and load both models")
    doctor.set_defaults(run=_doctor)

    bench = commands.add_parser("bench", help="measure load times, trace speed and memory")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    bench.set_defaults(run=_bench)

    validate = commands.add_parser("validate", help="check the claim bank (or one file) and report every error")
    validate.add_argument("path", nargs="?", help="content folder or a single YAML file (default: content/)")
    validate.set_defaults(run=_validate)

    claims = commands.add_parser("claims", help="print the loaded claim bank")
    claims.add_argument("--json", action="store_true", help="print JSON for tools")
    claims.set_defaults(run=_claims)

    demo = commands.add_parser("demo", help="list the live demos or run one")
    demo.add_argument("id", nargs="?", help="demo id (see --list)")
    demo.add_argument("--list", action="store_true", help="list the demos")
    demo.add_argument("--prompt", help="the sentence to run (default: the demo's own)")
    demo.add_argument("--layer", help="layer (demos that take one)")
    demo.add_argument("--head", help="query head (demos that take one)")
    demo.add_argument("--param", action="append", metavar="NAME=VALUE", help="any other demo parameter")
    demo.add_argument("--json", action="store_true", help="print JSON")
    demo.add_argument("--png", metavar="PATH", help="save the chart as PNG (or SVG if PATH ends in .svg)")
    demo.set_defaults(run=_demo)

    from kqv_demo.exports import FORMATS  # the registry (no torch): names, labels and help

    export = commands.add_parser("export", help="write a round as a handout (HTML/PDF), Moodle XML, GIFT or Anki deck",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="formats:\n" + "\n".join(f"  {fmt.name:8} {fmt.label}: {fmt.help}"
                                                                 for fmt in FORMATS.values()))
    export.add_argument("--round", required=True, metavar="NAME",
                        help="built-in round id, round file, or class round code")
    export.add_argument("--format", required=True, choices=list(FORMATS))
    export.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write")
    export.set_defaults(run=_export)

    ask = commands.add_parser("ask", help="ask the explainer chat (answers only from the vetted bank)")
    ask.add_argument("message", nargs="*", help="a question or a belief about attention")
    ask.add_argument("--jsonl", action="store_true", help="read one message per line on stdin, write one JSON per line")
    ask.add_argument("--eval", metavar="YAML", help="score a labelled message set (the dev set's format)")
    ask.add_argument("--small-model", action="store_true", help="print SmolLM2's raw, unvetted answer instead")
    ask.set_defaults(run=_ask)

    stance = commands.add_parser(
        "build-stance", help="train the chat's stance model from the bank (cached by its hash)"
    )
    stance.add_argument("--json", action="store_true", help="print the model's facts as JSON")
    stance.set_defaults(run=_build_stance)

    class30 = commands.add_parser("class30", add_help=False,
                                  help="load test: simulated students play a class round at once (class30 --help)")
    class30.set_defaults(run=lambda args: _in_own_process("kqv_demo.ui.loadtest", args.passed_on))

    stress = commands.add_parser("stress", help="reliability: hostile files and text, kill -9, a hostile visitor, "
                                                "two servers (slow: see --quick)")
    stress.add_argument("--json", action="store_true", help='print one JSON object {"reliability": {...}}')
    stress.add_argument("--quick", action="store_true", help="smaller sizes (100 files, 3 kills, ...): minutes")
    stress.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL for the kill -9 and two-server runs (default: $KQV_TEST_DATABASE_URL, "
                             "else a throw-away server by .ci/pg when PostgreSQL is installed, else skipped)")
    stress.set_defaults(run=_stress)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, passed_on = parser.parse_known_args(argv)
    if passed_on and args.command != "class30":  # class30 reads its own options
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    args.passed_on = passed_on
    try:
        return args.run(args)
    except KqvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
