"""Command line: `python -m kqv_demo COMMAND`. Run with --help for the list."""

from __future__ import annotations

import argparse
import json
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
            "headline": dict(demo.headline(result)), "explanation": demo.explain(result),
            "result": jsonable(result),
        }, ensure_ascii=False))
    else:
        for label, value in demo.headline(result):
            print(f"{label}: {value}")
        print(demo.explain(result))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kqv_demo.content.loader import load_bank

    bank = load_bank(Path(args.path) if args.path else None)
    for problem in bank.errors:
        print(f"error: {problem}")
    for problem in bank.warnings:
        print(f"warning: {problem}")
    summary = f"{len(bank.claims)} claims and {len(bank.topics)} topic pages valid"
    if bank.errors:
        print(f"{summary}; {len(bank.errors)} error(s).")
        return 1
    print(f"{summary}; no errors.")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KqvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
