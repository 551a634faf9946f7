"""Log directories: confinement to the allowed roots, and the bounded run finder."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from conftest import write_scalars

from jupyter_forgather_tb.common.options import OptionError
from jupyter_forgather_tb.server.logdirs import find as logdirs
from jupyter_forgather_tb.server.logdirs.find import LogdirEntry, find_logdirs, resolve_logdir


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "runs" / "a").mkdir(parents=True)
    return root


def resolve(value, root, roots=None, field="logdir", root_dir=None):
    return resolve_logdir(value, str(root_dir or root), [str(r) for r in (roots or [root])], field)


def refused(value, root, roots=None, field="logdir", root_dir=None) -> str:
    with pytest.raises(OptionError) as error:
        resolve(value, root, roots, field, root_dir)
    assert error.value.field == field
    return error.value.message


# --- resolve_logdir: accepted --------------------------------------------------------------


def test_relative_path_is_taken_from_root_dir(root):
    assert resolve("runs", root) == str(root / "runs")
    assert resolve("runs/a", root) == str(root / "runs" / "a")
    assert resolve("a", root, root_dir=root / "runs") == str(root / "runs" / "a")


def test_root_itself_is_accepted(root):
    assert resolve(".", root) == str(root)
    assert resolve(str(root), root) == str(root)


def test_absolute_path_inside_is_accepted(root):
    assert resolve(str(root / "runs" / "a"), root) == str(root / "runs" / "a")


def test_dot_dot_that_stays_inside_is_accepted_and_normalized(root):
    assert resolve("runs/a/..", root) == str(root / "runs")
    assert resolve("runs/a/../../runs", root) == str(root / "runs")


def test_trailing_slash_is_normalized(root):
    assert resolve("runs/", root) == str(root / "runs")


def test_symlink_inside_the_root_resolves_to_its_target(root):
    os.symlink(root / "runs", root / "alias")
    assert resolve("alias", root) == str(root / "runs")


def test_allowed_root_given_through_a_symlink_is_compared_by_its_real_path(root, tmp_path):
    os.symlink(root, tmp_path / "root-link")
    assert resolve(str(root / "runs"), root, roots=[tmp_path / "root-link"]) == str(root / "runs")
    assert resolve(str(tmp_path / "root-link" / "runs"), root) == str(root / "runs")


def test_any_of_several_roots_is_accepted(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    assert resolve(str(other), root, roots=[root, other]) == str(other)


def test_tilde_is_expanded(root, monkeypatch):
    monkeypatch.setenv("HOME", str(root / "runs"))
    assert resolve("~/a", root) == str(root / "runs" / "a")


def test_result_is_real_and_absolute(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = resolve("runs", root, root_dir=os.path.relpath(root, tmp_path))
    assert os.path.isabs(real)
    assert real == os.path.realpath(real) == str(root / "runs")


# --- resolve_logdir: refused ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["..", "../..", "runs/../..", "runs/a/../../../x"])
def test_dot_dot_escape_is_refused(root, value):
    assert "outside" in refused(value, root)


def test_absolute_path_outside_is_refused(root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert "outside" in refused(str(outside), root)
    assert "outside" in refused("/", root)


def test_symlink_inside_the_root_pointing_outside_is_refused(root, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, root / "link")
    assert "outside" in refused("link", root)
    assert "outside" in refused(str(root / "link"), root)


def test_sibling_sharing_the_root_name_as_prefix_is_refused(root, tmp_path):
    sibling = tmp_path / "root2"  # "<root>2": a string prefix match, not inside
    (sibling / "runs").mkdir(parents=True)
    assert str(sibling).startswith(str(root))
    assert "outside" in refused(str(sibling), root)
    assert "outside" in refused(str(sibling / "runs"), root)
    assert "outside" in refused("../root2", root)


def test_file_is_refused(root):
    (root / "file.txt").write_text("x")
    assert "not an existing directory" in refused("file.txt", root)


def test_missing_directory_is_refused(root):
    assert "not an existing directory" in refused("nope", root)
    assert "not an existing directory" in refused("runs/a/b/c", root)


def test_missing_directory_outside_is_refused_as_outside(root):
    assert "outside" in refused("../nope", root)


def test_no_allowed_root_refuses_everything(root):
    with pytest.raises(OptionError) as error:
        resolve_logdir("runs", str(root), [])
    assert error.value.field == "logdir"


@pytest.mark.parametrize("field", ["path", "logdir", "other"])
def test_field_name_is_used_in_errors(root, field):
    refused("../..", root, field=field)
    refused("nope", root, field=field)


def test_logdir_shape_is_checked(root):
    refused("ftp://host/p", root)
    refused("", root)
    refused(5, root)


def test_other_fields_must_be_strings(root):
    refused(None, root, field="path")
    refused(["runs"], root, field="path")


def test_nul_byte_is_an_option_error_for_any_field(root):
    refused("runs\0x", root, field="path")


# --- find_logdirs ----------------------------------------------------------------------------


def make_run(directory, mtime=None, name="events.out.tfevents.1.host"):
    directory.mkdir(parents=True, exist_ok=True)
    event = directory / name
    event.write_bytes(b"")
    if mtime is not None:
        os.utime(event, (mtime, mtime))
    return event


def found(top, max_depth=10, max_dirs=1000):
    entries, truncated = find_logdirs(str(top), max_depth=max_depth, max_dirs=max_dirs)
    return {os.path.relpath(e.path, top): (e.runs, e.last_modified) for e in entries}, truncated


def test_runs_are_counted_for_every_ancestor(tmp_path):
    make_run(tmp_path / "exp1" / "run1", mtime=1000)
    make_run(tmp_path / "exp1" / "run2", mtime=3000)
    make_run(tmp_path / "exp2", mtime=2000)
    (tmp_path / "empty").mkdir()
    assert found(tmp_path) == (
        {
            ".": (3, 3000),
            "exp1": (2, 3000),
            "exp1/run1": (1, 1000),
            "exp1/run2": (1, 3000),
            "exp2": (1, 2000),
        },
        False,
    )


def test_nested_runs_count_at_each_level(tmp_path):
    make_run(tmp_path / "a", mtime=100)
    make_run(tmp_path / "a" / "b", mtime=200)
    make_run(tmp_path / "a" / "b" / "c", mtime=50)
    runs, _ = found(tmp_path)
    assert runs == {".": (3, 200), "a": (3, 200), "a/b": (2, 200), "a/b/c": (1, 50)}


def test_last_modified_is_the_newest_event_file(tmp_path):
    make_run(tmp_path / "run", mtime=1000, name="events.out.tfevents.1.host")
    make_run(tmp_path / "run", mtime=5000, name="events.out.tfevents.2.host")
    make_run(tmp_path / "run", mtime=3000, name="events.out.tfevents.3.host")
    (tmp_path / "run" / "notes.txt").write_text("x")
    os.utime(tmp_path / "run" / "notes.txt", (9000, 9000))  # not an event file
    runs, _ = found(tmp_path)
    assert runs["run"] == (1, 5000)  # several event files are still one run
    assert runs["."] == (1, 5000)


def test_top_itself_can_be_a_run(tmp_path):
    make_run(tmp_path, mtime=1234)
    assert found(tmp_path) == ({".": (1, 1234)}, False)


def test_directories_without_event_files_are_not_listed(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "checkpoint.pt").write_text("x")
    (tmp_path / "a" / "tfevents-dir").mkdir()  # a directory, not an event file
    assert find_logdirs(str(tmp_path), max_depth=10, max_dirs=100) == ([], False)


def test_entries_are_sorted_by_path(tmp_path):
    for name in ["c", "a", "b/z", "b/y"]:
        make_run(tmp_path / name)
    entries, _ = find_logdirs(str(tmp_path), max_depth=10, max_dirs=100)
    paths = [e.path for e in entries]
    assert paths == sorted(paths)
    assert len(paths) == 1 + 4 + 1  # top, four runs, and "b"


def test_hidden_directories_are_skipped(tmp_path):
    make_run(tmp_path / ".cache" / "run")
    make_run(tmp_path / ".hidden")
    make_run(tmp_path / "visible" / ".git" / "run")
    assert find_logdirs(str(tmp_path), max_depth=10, max_dirs=100) == ([], False)


def test_symlinked_directories_are_not_followed(tmp_path):
    top = tmp_path / "top"
    top.mkdir()
    outside = tmp_path / "outside"
    make_run(outside / "run")
    os.symlink(outside, top / "link")
    os.symlink(outside / "run", top / "runlink")
    assert find_logdirs(str(top), max_depth=10, max_dirs=100) == ([], False)


def test_symlink_loop_does_not_hang(tmp_path):
    make_run(tmp_path / "a", mtime=10)
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    assert found(tmp_path) == ({".": (1, 10), "a": (1, 10)}, False)


def test_missing_top_gives_nothing(tmp_path):
    assert find_logdirs(str(tmp_path / "nope"), max_depth=3, max_dirs=10) == ([], False)


@pytest.mark.parametrize(("max_depth", "reached"), [(0, False), (2, False), (3, True), (4, True)])
def test_max_depth_bounds_the_walk(tmp_path, max_depth, reached):
    make_run(tmp_path / "a" / "b" / "c", mtime=7)  # three levels below top
    runs, truncated = found(tmp_path, max_depth=max_depth)
    assert ("a/b/c" in runs) is reached
    assert truncated is not reached
    if reached:
        assert runs["."] == (1, 7)
    else:
        assert runs == {}


def test_max_depth_truncation_keeps_shallower_runs(tmp_path):
    make_run(tmp_path / "shallow", mtime=1)
    make_run(tmp_path / "a" / "b" / "deep", mtime=2)
    runs, truncated = found(tmp_path, max_depth=1)
    assert runs == {".": (1, 1), "shallow": (1, 1)}
    assert truncated is True


def test_hidden_directories_at_the_depth_limit_do_not_count_as_truncation(tmp_path):
    make_run(tmp_path / "run")
    (tmp_path / "run" / ".cache").mkdir()
    _, truncated = found(tmp_path, max_depth=1)
    assert truncated is False


@pytest.mark.parametrize(("max_dirs", "truncated"), [(4, True), (5, False), (100, False)])
def test_max_dirs_bounds_the_walk(tmp_path, max_dirs, truncated):
    for i in range(4):
        make_run(tmp_path / f"r{i}")  # five directories in all, with the top
    runs, was_truncated = found(tmp_path, max_dirs=max_dirs)
    assert was_truncated is truncated
    if truncated:
        assert len(runs) - 1 == max_dirs - 1  # the top plus the runs it had time to visit
        assert runs["."][0] == max_dirs - 1
    else:
        assert runs["."][0] == 4


def test_max_dirs_zero_visits_nothing(tmp_path):
    make_run(tmp_path)
    assert find_logdirs(str(tmp_path), max_depth=3, max_dirs=0) == ([], True)


def test_top_with_a_trailing_slash_is_walked_like_without(tmp_path):
    make_run(tmp_path / "logs" / "run", mtime=5)
    calls = 0
    real_dirname = os.path.dirname

    def dirname(path):
        nonlocal calls
        calls += 1
        assert calls < 1000, "find_logdirs kept walking up past top"
        return real_dirname(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logdirs.os.path, "dirname", dirname)
        entries, truncated = find_logdirs(str(tmp_path / "logs") + "/", 5, 100)
    assert sorted(os.path.normpath(e.path) for e in entries) == [
        str(tmp_path / "logs"),
        str(tmp_path / "logs" / "run"),
    ]
    assert truncated is False


@pytest.mark.parametrize(
    ("max_entries", "truncated"), [(0, True), (5, True), (7, True), (8, False), (100, False)]
)
def test_max_entries_bounds_the_entries_read_over_the_whole_walk(tmp_path, max_entries, truncated):
    for i in range(4):
        make_run(tmp_path / f"r{i}")  # eight entries in all: four folders, an event file in each
    read = 0
    real_scandir = os.scandir

    class Counted:
        def __init__(self, path):
            self.entries = real_scandir(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.entries.close()

        def __iter__(self):
            nonlocal read
            for entry in self.entries:
                read += 1
                yield entry

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logdirs.os, "scandir", Counted)
        entries, was_truncated = find_logdirs(str(tmp_path), 10, 1000, max_entries)
    assert was_truncated is truncated
    # At most one entry past the budget is read, to learn that there was more.
    assert read <= max_entries + 1
    runs = sum(1 for entry in entries if entry.path != str(tmp_path))
    assert runs == (4 if not truncated else max(0, max_entries - 4))


def test_a_flat_folder_cut_short_by_the_entry_budget_still_lists_itself(tmp_path):
    for i in range(50):
        make_run(tmp_path / "flat", mtime=100, name=f"events.out.tfevents.{i}.host")
    assert found(tmp_path / "flat", max_dirs=10) == ({".": (1, 100)}, False)
    entries, truncated = find_logdirs(str(tmp_path / "flat"), 10, 10, max_entries=10)
    assert [(e.path, e.runs) for e in entries] == [(str(tmp_path / "flat"), 1)]
    assert truncated is True


# --- the picker's REST endpoint on a folder of many files ---------------------------------

MANY_FILES = 50_000
SCANS = 6  # with the launch, within the test client's ten connections


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    """A folder of 50,000 empty files named like event files."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(MANY_FILES):
        os.close(os.open(folder / f"events.out.tfevents.{i}.host", os.O_CREAT | os.O_WRONLY, 0o600))
    return folder


@pytest.fixture
def huge_folder(many_files, tb_config, jp_root_dir):
    """The folder of many files, readable by the server under test (request before ``api``)."""
    tb_config["allowed_roots"] = [str(jp_root_dir), str(many_files)]
    return str(many_files)


async def test_a_scan_of_a_folder_of_many_files_is_truncated_and_says_so(huge_folder, api):
    answer = await api.json("GET", "logdirs", params={"path": huge_folder}, expect=200)
    assert answer["truncated"] is True
    assert [(e["path"], e["runs"]) for e in answer["logdirs"]] == [(huge_folder, 1)]


def _scan_threads(before: set[threading.Thread]) -> int:
    """Log directory scan threads started since ``before`` was taken."""
    return sum(
        1
        for thread in set(threading.enumerate()) - before
        if thread.name.startswith("forgather-tb-scan")
    )


@pytest.mark.tb_config(logdir_scan_max_entries=40_000)
async def test_a_launch_never_waits_behind_scans_of_a_folder_of_many_files(
    huge_folder, api, logdir
):
    finished = []
    threads_before = set(threading.enumerate())

    async def scan():
        answer = await api.json("GET", "logdirs", params={"path": huge_folder}, expect=200)
        finished.append("scan")
        return answer

    scans = [asyncio.ensure_future(scan()) for _ in range(SCANS)]
    try:
        # The server is at work on the scans once both of its scan threads exist.
        while _scan_threads(threads_before) < 2:
            assert not any(task.done() for task in scans), "a scan ended before the launch"
            await asyncio.sleep(0.01)
        job = await api.launch(logdir="logs")
        finished.append("launch")
    finally:
        answers = await asyncio.gather(*scans)
    assert finished[0] == "launch", finished  # answered while every scan was still in flight
    assert all(answer["truncated"] for answer in answers)
    await api.wait_status(job["id"], "running")


# --- LogdirEntry.to_json ---------------------------------------------------------------------


def test_to_json_paths_are_relative_to_the_root(tmp_path):
    make_run(tmp_path / "exp1" / "run1", mtime=1000)
    entries, _ = find_logdirs(str(tmp_path), max_depth=5, max_dirs=100)
    assert [e.to_json(str(tmp_path)) for e in entries] == [
        {"path": "", "runs": 1, "last_modified": 1000},
        {"path": "exp1", "runs": 1, "last_modified": 1000},
        {"path": os.path.join("exp1", "run1"), "runs": 1, "last_modified": 1000},
    ]


def test_to_json_paths_outside_the_root_are_absolute(tmp_path):
    make_run(tmp_path / "x")
    entries, _ = find_logdirs(str(tmp_path / "x"), max_depth=1, max_dirs=10)
    assert entries[0].to_json(str(tmp_path / "elsewhere"))["path"] == str(tmp_path / "x")
    assert LogdirEntry("/data/x", 1, 0.0).to_json("/home/u")["path"] == "/data/x"


def test_to_json_directory_named_with_leading_dots_is_relative(tmp_path):
    assert LogdirEntry(str(tmp_path / "..old"), 1, 0.0).to_json(str(tmp_path))["path"] == "..old"


# --- resolve_members: a compare launch's folders ---------------------------------------------


def members(root, given):
    return logdirs.resolve_members(tuple(given), str(root), [str(root)])


def test_named_members_are_resolved_and_keep_their_names(root):
    (root / "other").mkdir()
    assert members(root, [("a", "runs/a"), ("b", str(root / "other"))]) == [
        ("a", str(root / "runs" / "a")),
        ("b", str(root / "other")),
    ]


def test_listed_members_are_named_after_their_last_part_made_unique(root):
    (root / "x" / "a").mkdir(parents=True)
    (root / "y" / "a").mkdir(parents=True)
    named = members(root, [("", "runs/a"), ("", "x/a/"), ("", "y/a"), ("", "runs")])
    assert [name for name, _ in named] == ["a", "a-2", "a-3", "runs"]


def test_a_listed_dot_is_named_after_the_real_folder(root):
    assert members(root, [("", "."), ("", "runs/a")])[0] == ("root", str(root))


def test_every_member_is_confined_like_a_logdir(root, tmp_path):
    os.symlink(tmp_path, root / "out")
    for path in ("..", str(tmp_path), "out", "runs/missing"):
        with pytest.raises(OptionError) as error:
            members(root, [("a", "runs/a"), ("b", path)])
        assert error.value.field == "logdirs"


def test_the_same_folder_twice_is_refused_even_through_a_link(root):
    os.symlink(root / "runs" / "a", root / "again")
    with pytest.raises(OptionError, match="the same folder"):
        members(root, [("a", "runs/a"), ("b", "again")])


def test_a_listed_folder_whose_name_would_be_misread_asks_for_names(root):
    (root / "odd=name").mkdir()
    with pytest.raises(OptionError, match="give the folders names instead"):
        members(root, [("", "odd=name")])


# --- scan_events: the activity scan ------------------------------------------------------------


def test_scan_counts_runs_files_bytes_and_the_newest_write(tmp_path):
    first = write_scalars(tmp_path / "a" / "run1", "loss", [1.0])
    write_scalars(tmp_path / "a" / "run1", "acc", [1.0])
    write_scalars(tmp_path / "b" / "run2" / "eval", "loss", [1.0])
    (first / "checkpoint").write_text("x" * 1000)  # not an event file
    os.utime(next(first.glob("*tfevents*")), (1000, 1000))
    files = list(tmp_path.rglob("*tfevents*"))
    scan = logdirs.scan_events([str(tmp_path / "a"), str(tmp_path / "b")], 4, 100, 1000)
    assert scan == logdirs.EventScan(
        runs=2,
        event_files=3,
        event_bytes=sum(f.stat().st_size for f in files),
        last_write=max(f.stat().st_mtime for f in files),
    )


def test_an_empty_or_missing_folder_scans_as_nothing(tmp_path):
    empty = logdirs.EventScan(0, 0, 0, None)
    assert logdirs.scan_events([str(tmp_path)], 4, 100, 1000) == empty
    assert logdirs.scan_events([str(tmp_path / "missing")], 4, 100, 1000) == empty


def test_scan_limits_are_shared_by_all_folders(tmp_path):
    for top in ("a", "b"):
        for run in range(3):
            write_scalars(tmp_path / top / f"run{run}", "loss", [1.0])
    tops = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert logdirs.scan_events(tops, 4, 100, 1000).runs == 6
    assert logdirs.scan_events(tops, 4, 4, 1000).runs == 3  # a and its 3 runs: 4 directories
    assert logdirs.scan_events(tops, 0, 100, 1000).runs == 0  # the tops hold no event files
