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


def build_command(spec, out, data_dir, *extra):
    return [sys.executable, "-m", "reportgen", "build", "--spec", str(spec), "--profile", "smoke", "--device", "cpu",
            "--out", str(out), "--data-dir", str(data_dir), *extra]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_while_rendering(tiny_spec, tmp_path, data_dir, sig):
    out = tmp_path / "out"
    subprocess.run(build_command(tiny_spec, out, data_dir, "--no-pdf"), check=True, capture_output=True)
    (out / "report.html").unlink()
    process = subprocess.Popen(build_command(tiny_spec, out, data_dir, "--no-train"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(random.uniform(2.0, 4.0))  # imports take ~2 s; rendering and the PDF follow
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0].decode()
    assert "Traceback" not in output

    html = out / "report.html"
    assert not html.exists() or html.read_text().rstrip().endswith("</html>")
    pdf = out / "report.pdf"
    assert not pdf.exists() or pdf.read_bytes().rstrip().endswith(b"%%EOF")
    spec = load_spec(tiny_spec)
    assert all(cached_results(out / "cache", job) for job in plan_jobs(spec, list(spec.questions), "smoke", "cpu"))

    again = subprocess.run(build_command(tiny_spec, out, data_dir, "--no-train"), capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert html.read_text().rstrip().endswith("</html>") and pdf.read_bytes()[:4] == b"%PDF"
