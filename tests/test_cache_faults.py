"""Cache faults: damaged entries are never trusted, an unwritable cache is reported clearly."""
from __future__ import annotations

import errno
import json

import pytest
from typer.testing import CliRunner

from reportgen import plan
from reportgen.cli import app
from reportgen.runner import cached_results, execute_job
from tests.test_runner import Recorder, make_job, metrics_of, only


def run_cli(tiny_spec, tmp_path, data_dir, *extra):
    return CliRunner().invoke(app, ["run", "b", "--spec", str(tiny_spec), "--profile", "smoke", "--no-report",
                                    "--out", str(tmp_path / "out"), "--data-dir", str(data_dir), *extra])


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")])
def test_unwritable_cache_is_reported_without_traceback(tiny_spec, tmp_path, data_dir, monkeypatch, code, words):
    def refuse(*args, **kwargs):
        raise OSError(code, "simulated")

    monkeypatch.setattr("reportgen.cache.tempfile.mkstemp", refuse)
    result = run_cli(tiny_spec, tmp_path, data_dir)
    assert result.exit_code == 4, result.output
    message = result.output.replace("\n", " ")
    assert "cannot write the run cache" in message and words in message and "--cache-dir" in message
    assert "Traceback" not in result.output
    assert not list((tmp_path / "out").glob("cache/runs/*/*/state.json"))


def test_a_failed_write_mid_run_keeps_the_finished_epochs(tmp_path, data_dir, monkeypatch):
    job = make_job(epochs=3)
    execute_job(make_job(epochs=2), tmp_path, data_dir)
    monkeypatch.setattr("reportgen.cache.tempfile.mkstemp", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(Exception, match="disk is full"):
        execute_job(job, tmp_path, data_dir)
    monkeypatch.undo()
    assert len(only(cached_results(tmp_path, make_job(epochs=2))).epochs) == 2  # still intact
    recorder = Recorder()
    execute_job(job, tmp_path, data_dir, recorder)
    assert recorder.trained_epochs() == [3]


def test_entry_from_another_engine_version_is_not_reused(tmp_path, data_dir, monkeypatch):
    old = make_job(epochs=1)
    execute_job(old, tmp_path, data_dir)
    monkeypatch.setattr(plan, "ENGINE_VERSION", "999")
    new = make_job(epochs=1)  # make_job reads plan.ENGINE_VERSION at call time
    assert new.key != old.key
    assert cached_results(tmp_path, new) is None


def test_tampered_request_does_not_pass_for_its_key(tmp_path, data_dir):
    job = make_job(epochs=1)
    execute_job(job, tmp_path, data_dir)
    state_path = tmp_path / "runs" / job.key[:2] / job.key / "state.json"
    state = json.loads(state_path.read_text())
    state["request"]["lr"] = 0.5  # an entry copied from elsewhere, or edited by hand
    state_path.write_text(json.dumps(state))
    assert cached_results(tmp_path, job) is None
    recorder = Recorder()
    execute_job(job, tmp_path, data_dir, recorder)
    assert any(e.kind == "corrupt" and "does not hash to its key" in e.message for e in recorder.events)
    assert recorder.trained_epochs() == [1]


def test_leftover_temp_files_are_removed_and_never_read(tmp_path, data_dir):
    job = make_job(epochs=1)
    first = only(execute_job(job, tmp_path, data_dir))
    folder = tmp_path / "runs" / job.key[:2] / job.key
    (folder / ".state.json.abc.tmp").write_text("{half a file")
    again = only(execute_job(job, tmp_path, data_dir))
    assert metrics_of(again) == metrics_of(first)
    assert not list(folder.glob(".*.tmp"))
