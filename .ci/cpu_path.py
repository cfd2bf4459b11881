"""Say which float32 kernels this process gets, and fail unless they are the ones asked for.

    ATEN_CPU_CAPABILITY=avx2 python .ci/cpu_path.py AVX2 generic
    LD_PRELOAD=.venv/mkl_as_on_intel.so python .ci/cpu_path.py any intel

The first argument is torch's kernel set (torch.backends.cpu.get_cpu_capability(): AVX512, AVX2, DEFAULT,
or `any`); the second is MKL's code path, read from MKL_VERBOSE: `intel` (its Intel kernels, AVX-512 or
AVX2), `generic` (what it runs on AMD CPUs) or `any`. `make test-cpu-paths` calls this before each leg,
so that a leg never passes while running the kernels of another.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

PRODUCT = "import torch; torch.ones(64, 64) @ torch.ones(64, 64)"


def mkl_code_path() -> str:
    """MKL's own description of the kernels it picked, from its first MKL_VERBOSE line."""
    run = subprocess.run([sys.executable, "-c", PRODUCT], capture_output=True, text=True,
                         env={**os.environ, "MKL_VERBOSE": "1"}, check=True)
    line = next((line for line in run.stdout.splitlines() if line.startswith("MKL_VERBOSE oneMKL")), "")
    return line.split(" for Intel(R) 64 architecture ")[-1].split(", Lnx")[0] or "MKL not in use"


def main(wanted_torch: str, wanted_mkl: str) -> int:
    capability = torch.backends.cpu.get_cpu_capability()
    mkl = mkl_code_path()
    on_intel_path = "Advanced Vector Extensions" in mkl
    print(f"cpu path: torch kernels {capability}; MKL: {mkl}")
    if wanted_torch != "any" and capability != wanted_torch:
        return f"wanted torch's {wanted_torch} kernels, got {capability} (this CPU may lack them)"
    if wanted_mkl != "any" and (wanted_mkl == "intel") != on_intel_path:
        return f"wanted MKL's {wanted_mkl} code path, got: {mkl}"
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
