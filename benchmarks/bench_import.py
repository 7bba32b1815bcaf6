"""What ``import modlib`` adds after ``import torch``, and what first use of its parts adds.

Each measurement runs in a fresh interpreter (nothing cached in ``sys.modules``) that imports
torch first and then times only the snippet: the median over several interpreters. Run:
``python benchmarks/bench_import.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

SNIPPETS = {
    "import modlib": "import modlib",
    "+ the method (core, fit)": ("import modlib; modlib.clusterability; modlib.spectral_cocluster;"
                                 " modlib.ClusterabilityLoss; modlib.fit"),
    "+ analysis (circuits, llm)": "import modlib; modlib.circuits; modlib.llm; modlib.fourier",
    "+ figures (modlib.viz)": "import modlib; modlib.viz",
}
CODE = ("import time, torch; t = time.perf_counter(); {snippet}; "
        "print(time.perf_counter() - t)")


def once(snippet: str) -> float:
    """Seconds to run ``snippet`` in a fresh interpreter (interpreter start-up excluded)."""
    out = subprocess.run([sys.executable, "-c", CODE.format(snippet=snippet)], check=True,
                         capture_output=True, text=True).stdout
    return float(out)


def main(runs: int = 9) -> None:
    """Print the median seconds each snippet takes after ``import torch``."""
    print(f"seconds after `import torch`, median of {runs} fresh interpreters")
    for name, snippet in SNIPPETS.items():
        t = statistics.median([once(snippet) for _ in range(runs)])
        print(f"{name:<28} {t:7.3f}")


if __name__ == "__main__":
    main()
