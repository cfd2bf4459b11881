"""Formats that need no model do not pay for one (issue #14, 5; issue #15, 1): Moodle XML and GIFT of a
round without predictions, and checking the bank, never import torch (about 1.6 s of start-up alone)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from kqv_demo.content.loader import load_bank
from kqv_demo.exports import build_export
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items
bank = load_bank(dialogue=False)
spec = resolve_round(bank, "core-10")
items = round_items(bank, spec)
sizes = {fmt: len(build_export(bank, spec, items, fmt)) for fmt in ("moodle", "gift")}
print(json.dumps({"sizes": sizes, "predictions": sum(i.kind == "predict" for i in items),
                  "bank_errors": len(bank.errors), "torch": "torch" in sys.modules,
                  "transformers": "transformers" in sys.modules}))
"""


def test_moodle_and_gift_of_core_10_and_the_bank_check_never_import_torch():
    output = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=300)
    facts = json.loads(output.stdout.strip().splitlines()[-1])
    assert facts["predictions"] == 0 and facts["bank_errors"] == 0
    assert min(facts["sizes"].values()) > 1000  # real exports were built
    assert facts["torch"] is False and facts["transformers"] is False
