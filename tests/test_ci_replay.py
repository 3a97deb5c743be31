"""The CI workflow: its cache keys and restore order (replayed here as actions/cache documents them), two
consecutive replayed CI runs on the tiny spec, and the workflow file against GitHub's workflow schema."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.ci_replay import CacheKeys, CacheStore, build_command, cache_keys, github_output, replay_run
from reportgen.plan import ENGINE_VERSION
from tests.conftest import REPO, TINY_SPEC

WORKFLOW = REPO / ".github" / "workflows" / "report.yml"


def test_keys_name_engine_profile_and_spec_and_fall_back_from_narrow_to_wide(tiny_spec):
    keys = cache_keys(tiny_spec, "cpu", "42")
    engine = f"reportgen-runs-e{ENGINE_VERSION}-"
    assert keys.restore_keys[1:] == (f"{engine}cpu-", engine)
    assert keys.key.startswith(keys.restore_keys[0]) and keys.key.endswith("-42")
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 3", "epochs = 4"))
    edited = cache_keys(tiny_spec, "cpu", "42")
    assert edited.restore_keys[0] != keys.restore_keys[0] and edited.restore_keys[1:] == keys.restore_keys[1:]


def test_github_output_is_the_heredoc_form():
    text = github_output(CacheKeys("k-1", ("k-", "j-")))
    assert text == "key=k-1\nrestore-keys<<EOF\nk-\nj-\nEOF\n"


def saved(store: CacheStore, tmp_path: Path, key: str, ref: str = "main") -> None:
    folder = tmp_path / "payload" / key
    folder.mkdir(parents=True)
    (folder / "marker").write_text(key)
    assert store.save(key, ref, folder)


def test_the_store_matches_as_actions_cache_does(tmp_path):
    store = CacheStore(tmp_path / "store")
    keys = CacheKeys("e5-cpu-B-3", ("e5-cpu-B-", "e5-cpu-", "e5-"))
    assert store.match(keys, "main", "main").how == "miss"
    saved(store, tmp_path, "e5-smoke-A-1")
    assert store.match(keys, "main", "main").key == "e5-smoke-A-1"  # the widest fallback
    saved(store, tmp_path, "e5-cpu-A-1")
    saved(store, tmp_path, "e5-cpu-A-2")
    hit = store.match(keys, "main", "main")
    assert (hit.key, hit.how) == ("e5-cpu-A-2", "restore key e5-cpu-")  # the newest of the profile's
    saved(store, tmp_path, "e5-cpu-B-2")
    assert store.match(keys, "main", "main").key == "e5-cpu-B-2"  # the same spec beats a newer-profile entry
    assert not store.save("e5-cpu-B-2", "main", tmp_path / "payload" / "e5-cpu-B-2")  # entries are immutable
    store.restore(store.match(keys, "main", "main"), tmp_path / "restored")
    assert (tmp_path / "restored" / "marker").read_text() == "e5-cpu-B-2"


def test_a_pull_request_sees_its_own_entries_first_then_mains(tmp_path):
    store = CacheStore(tmp_path / "store")
    keys = CacheKeys("e5-cpu-B-9", ("e5-cpu-B-", "e5-cpu-"))
    saved(store, tmp_path, "e5-cpu-A-1", "main")
    assert store.match(keys, "pr-7", "main").ref == "main"
    saved(store, tmp_path, "e5-cpu-C-2", "pr-8")  # another pull request's: never visible
    assert store.match(keys, "pr-7", "main").key == "e5-cpu-A-1"
    saved(store, tmp_path, "e5-cpu-B-3", "pr-7")
    assert (store.match(keys, "pr-7", "main").key, store.match(keys, "main", "main").key) == ("e5-cpu-B-3", "e5-cpu-A-1")


@pytest.mark.slow
def test_two_ci_runs_train_only_what_the_spec_change_touched(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("REPORTGEN_DATA_DIR", str(data_dir))
    monkeypatch.delenv("REPORTGEN_CACHE_DIR", raising=False)
    spec, store, work = tmp_path / "experiments.toml", CacheStore(tmp_path / "store"), tmp_path / "runner"
    spec.write_text(TINY_SPEC)
    first = replay_run(work, store, spec, "smoke", "1", pdf=False)
    assert (first.restored.how, first.runs_trained, first.entries_written, first.saved, first.base) == ("miss", 4, 4, True, None)
    assert "No base build to compare with" in Path(first.summary).read_text()

    spec.write_text(TINY_SPEC.replace('runs = [{ model = "mlp", lr = 0.1, epochs = 3 }]',
                                      'runs = [{ model = "mlp", lr = 0.1, epochs = 4 }]'))  # question b only
    second = replay_run(work, store, spec, "smoke", "2", pdf=False)
    assert second.restored.key == first.key and second.restored.how.startswith("restore key reportgen-runs-e")
    assert (second.runs_trained, second.entries_written, second.saved) == (1, 1, True)  # b's run extended; a's restored
    summary = Path(second.summary).read_text()
    changes = summary[summary.index("### Changes"):]
    assert "**Question B** (`b`)" in changes and "**Question A**" not in changes
    assert "| b | Tiny MLP, epochs 3 → epochs 4: epochs | 3 | 4 |" in changes  # the edit, as a setting
    moved = [line for line in changes.splitlines() if line.startswith("| Tiny MLP, epochs 3 → epochs 4 |")]
    assert any("| epochs | 3 | 4 | +1 |" in line for line in moved), changes  # its numbers, with diff's verdicts
    assert any("| final acc. |" in line for line in moved), changes

    third = replay_run(work, store, spec, "smoke", "3", pdf=False)
    assert (third.restored.key, third.restored.how, third.runs_trained, third.saved) == (
        second.key, f"restore key {cache_keys(spec, 'smoke', '3').restore_keys[0]}", 0, False)
    assert "No differences" in Path(third.summary).read_text()


# ---------------------------------------------------------------- the workflow file

def workflow() -> dict:
    import yaml

    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_validates_against_githubs_schema():
    checker = shutil.which("check-jsonschema") or (Path(__import__("sys").executable).parent / "check-jsonschema")
    if not Path(checker).exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]')")
    done = subprocess.run([str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_uses_the_replayed_keys_and_build_command():
    steps = workflow()["jobs"]["report"]["steps"]
    keys = next(s for s in steps if s.get("id") == "keys")
    assert "python -m benchmarks.ci_replay keys" in keys["run"]  # the keys come from the code replayed here
    restore = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache/restore@"))
    assert restore["with"] == {"path": ".reportgen/cache", "key": "${{ steps.keys.outputs.key }}",
                               "restore-keys": "${{ steps.keys.outputs.restore-keys }}"}
    save = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache/save@"))
    assert save["with"] == {"path": ".reportgen/cache", "key": "${{ steps.keys.outputs.key }}"}
    assert "always()" in save["if"] and "steps.written.outputs.entries != '0'" in save["if"]
    build = " ".join(next(s for s in steps if s.get("id") == "build")["run"].split())
    replayed = " ".join(build_command('"$PROFILE"', None))
    assert f"reportgen {replayed}" in build and "touch .ci-build-start" in build
    written = next(s for s in steps if s.get("id") == "written")
    assert "always()" in written["if"]
    assert "find .reportgen/cache -name state.json -newer .ci-build-start" in written["run"]  # changed_entries' rule
