"""Killing `reportgen build` while it renders never damages the cache or leaves a half report
in place of a whole one; the next build completes."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from reportgen.plan import plan_jobs
from reportgen.runner import cached_results
from reportgen.spec import load_spec

# Files a `--no-train` build writes while it renders, in this order; each is removed before the build starts,
# so its appearance is a point in the rendering the same on a fast or a slow machine.
MARKERS = {"tables": "a table's CSV: the HTML is being built", "report.html": "the HTML: the PDF is being rendered"}
KILL_SEED = 1729
# Which signal interrupts at which point: drawn once from a seed, so every run does the same.
KILL_POINTS = list(zip([signal.SIGINT, signal.SIGKILL], random.Random(KILL_SEED).sample(list(MARKERS), 2)))


def default_sigint() -> None:
    """In the child: Ctrl-C's default action, even when the suite runs in the background (where the shell
    makes children ignore SIGINT, and Python then never turns it into KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def build_command(spec, out, data_dir, *extra):
    return [sys.executable, "-m", "reportgen", "build", "--spec", str(spec), "--profile", "smoke", "--device", "cpu",
            "--out", str(out), "--data-dir", str(data_dir), *extra]


def marker_written(out, marker: str) -> bool:
    if marker == "tables":
        return any((out / "tables").glob("*.csv"))
    return (out / marker).exists()


def wait_for(out, marker: str, process: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if marker_written(out, marker):
            return
        time.sleep(0.02)
    raise AssertionError(f"the build never wrote {MARKERS[marker]!r} (exit code {process.poll()})")


@pytest.mark.parametrize("sig, marker", KILL_POINTS, ids=[f"{s.name}-after-{m}" for s, m in KILL_POINTS])
def test_killed_while_rendering(tiny_spec, tmp_path, data_dir, sig, marker):
    out = tmp_path / "out"
    subprocess.run(build_command(tiny_spec, out, data_dir, "--no-pdf"), check=True, capture_output=True)
    (out / "report.html").unlink()
    for table in (out / "tables").glob("*.csv"):
        table.unlink()
    process = subprocess.Popen(build_command(tiny_spec, out, data_dir, "--no-train"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=default_sigint)
    try:
        wait_for(out, marker, process)
    finally:
        process.send_signal(sig)  # right after the marker appeared (or, on a failed wait, to leave no process behind)
    output = process.communicate(timeout=300)[0].decode()
    # Stopped mid-render, or (on a loaded machine the signal may land after the last write) finished cleanly.
    assert process.returncode in (0, 130 if sig == signal.SIGINT else -sig), output
    assert "Traceback" not in output

    html = out / "report.html"
    assert not html.exists() or html.read_text().rstrip().endswith("</html>")
    pdf = out / "report.pdf"
    assert not pdf.exists() or pdf.read_bytes().rstrip().endswith(b"%%EOF")
    spec = load_spec(tiny_spec)
    assert all(cached_results(tiny_spec.parent / ".reportgen" / "cache", job) for job in plan_jobs(spec, list(spec.questions), "smoke", "cpu"))

    again = subprocess.run(build_command(tiny_spec, out, data_dir, "--no-train"), capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert html.read_text().rstrip().endswith("</html>") and pdf.read_bytes()[:4] == b"%PDF"
