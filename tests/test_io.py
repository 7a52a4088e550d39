import os

import pytest

from koemo.core.io import atomic_dir, atomic_path, write_json


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_replaces_whole_directory_only_on_success(tmp_path):
    target = tmp_path / "shards"
    with atomic_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.npy").write_bytes(b"2")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_outputs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {})
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_json_is_stable(tmp_path):
    write_json(tmp_path / "a.json", {"b": 0.1234567891, "a": float("nan")})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": null,\n  "b": 0.123457\n}\n'


def test_a_killed_writers_temp_siblings_are_removed_by_the_next_write(tmp_path):
    """kill -9 runs no `finally`: the next atomic write of the same target clears what it left (and nothing else)."""
    import subprocess
    import sys

    script = ("import os, sys; from koemo.core.io import atomic_dir, atomic_path\n"
              "with atomic_dir(sys.argv[1] + '/feats') as d:\n"
              "    (d / 'half.npy').write_bytes(b'x')\n"
              "    with atomic_path(sys.argv[1] + '/m.json') as f:\n"
              "        f.write_text('half'); os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    (tmp_path / ".other.abc.tmp").write_text("not ours")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith(".feats.") for n in left) and any(n.startswith(".m.json.") for n in left)
    with atomic_dir(tmp_path / "feats") as d:
        (d / "a.npy").write_bytes(b"1")
    write_json(tmp_path / "m.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.abc.tmp", "feats", "m.json"]


def test_a_stage_sweeps_temps_left_beside_the_paths_it_touches(tmp_path):
    """DVC may restore a killed stage from its run cache without running it: the next stage working in the same
    directory clears what the kill left there."""
    from koemo.core.io import sweep_stale_temps

    features = tmp_path / "features"
    (features / ".mel.abc123.tmp").mkdir(parents=True)
    (features / ".melmean.def456.tmp").write_text("half")
    (features / "mel").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / ".x.1.tmp").write_text("not beside a path the stage touches")
    removed = sweep_stale_temps([str(features / "mel")])
    assert sorted(p.name for p in removed) == [".mel.abc123.tmp", ".melmean.def456.tmp"]
    assert [p.name for p in features.iterdir()] == ["mel"] and (tmp_path / "elsewhere" / ".x.1.tmp").exists()
