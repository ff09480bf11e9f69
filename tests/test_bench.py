"""Every benchmark imports (in one fresh process, so TensorFlow loads once): a module moved elsewhere breaks it here
rather than when someone runs it. Their figures are printed by running them, never asserted in tests."""

import subprocess
import sys

from conftest import ROOT


def test_every_benchmark_imports():
    names = sorted(f"bench.{path.stem}" for path in (ROOT / "bench").glob("*.py") if path.stem != "__init__")
    done = subprocess.run([sys.executable, "-c", f"import {', '.join(names)}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert len(names) >= 9 and done.returncode == 0, done.stderr[-2000:]
