"""The demo registry (kqv_demo/demos/__init__.py): ids known without importing a demo, demos on first use."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_ids_known_without_importing_them_are_the_demos_in_order():
    from kqv_demo.demos import DEMO_IDS, DEMOS

    assert DEMO_IDS == tuple(DEMOS) and all(DEMOS[demo_id].id == demo_id for demo_id in DEMO_IDS)
    assert len(DEMO_IDS) == len(set(DEMO_IDS)) >= 20


def test_naming_the_demos_imports_none_of_them():
    script = ("import sys; from kqv_demo.demos import DEMO_IDS; "
              "print(len(DEMO_IDS), 'torch' in sys.modules, any(m.startswith('kqv_demo.demos.') for m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert output[1:] == ["False", "False"] and int(output[0]) >= 20
