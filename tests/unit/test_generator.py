"""tools/async_to_sync.py: the sync modules that run are the committed generated files, and
``--check`` fails on stale outputs, orphaned outputs and rename rules that never fire."""

from __future__ import annotations

import importlib.util
import linecache
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType

import pytest

import poolwarden._sync._pool
from poolwarden import Pool, PoolError
from tests.fakedb import ACCESS_DENIED, FakeAdapter, FakeServer, OperationalError

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("async_to_sync", ROOT / "tools/async_to_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("async_to_sync", module)
    spec.loader.exec_module(module)
    return module


tool = _tool()


def _sync_frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    frames = traceback.extract_tb(tb)
    return [f for f in frames if "/poolwarden/_sync/" in Path(f.filename).as_posix()]


def _assert_meaningful(frames: list[traceback.FrameSummary]) -> None:
    """Every frame in a generated sync module points at a statement of that committed
    file (the one the generator wrote), not at a blank or comment line."""
    assert frames, "no frame in poolwarden/_sync"
    for frame in frames:
        path = Path(frame.filename)
        assert frame.lineno is not None
        text = linecache.getline(frame.filename, frame.lineno).strip()
        assert text and not text.startswith("#"), (frame, text)
        assert frame.line is not None and frame.line.strip() == text, (frame, text)
        first = path.read_text().partition("\n")[0]
        if path.name not in tool.PAIRS[0].skip:
            match = tool.HEADER.match(first)
            assert match is not None, f"{path}: no generated-from header"
            assert (ROOT / match.group(1)).is_file()


def test_the_sync_pool_that_runs_is_the_committed_generated_file() -> None:
    source = Path(poolwarden._sync._pool.__file__).resolve()
    assert source == ROOT / "src/poolwarden/_sync/_pool.py"
    assert tool.HEADER.match(source.read_text().partition("\n")[0])


def test_putconn_of_a_foreign_object_points_at_the_raise() -> None:
    server = FakeServer()
    with (
        Pool(server.connect, adapter=FakeAdapter(server)) as pool,
        pytest.raises(PoolError, match="takes a connection checked out") as info,
    ):
        pool.putconn(object())  # type: ignore[arg-type]
    frames = _sync_frames(info.tb)
    _assert_meaningful(frames)
    assert frames[-1].filename.endswith("_sync/_pool.py")
    assert "raise" in (frames[-1].line or "") or "PoolError" in (frames[-1].line or "")


def test_a_failing_connect_points_at_the_calls_down_to_it() -> None:
    """A permanent connect error raised to the caller: through the generated checkout and
    connect code, every frame there on a statement."""
    server = FakeServer()
    server.fail("connect", OperationalError(ACCESS_DENIED, "Access denied for user 'app'"))
    with (
        Pool(server.connect, adapter=FakeAdapter(server), timeout=5) as pool,
        pytest.raises(OperationalError) as info,
    ):
        pool.getconn()
    frames = _sync_frames(info.tb)
    _assert_meaningful(frames)
    assert any(f.filename.endswith("_sync/_pool.py") for f in frames), frames
    assert len(frames) >= 2, frames  # the checkout, and what it called


# -- --check on a tree of its own ----------------------------------------------------------

PAIR = tool.Pair("pkg/_async", "pkg/_sync", frozenset({"__init__.py", "_compat.py"}))


def _tree(tmp_path: Path) -> Path:
    """A root with one pair: a source using every rule once, and its outputs generated."""
    src = tmp_path / "pkg/_async"
    src.mkdir(parents=True)
    (tmp_path / "pkg/_sync").mkdir()
    for side in ("_async", "_sync"):
        (tmp_path / "pkg" / side / "__init__.py").write_text("")
        (tmp_path / "pkg" / side / "_compat.py").write_text("ASYNC = False\n")
    rules = "".join(f"# {name}\n" for name in tool.NAMES) + "".join(
        f"# {phrase}\n" for phrase in tool.PHRASES
    )
    (src / "mod.py").write_text(
        f'"""A module."""\n\n{rules}\n\nclass AsyncPool:\n    async def get(self) -> int:\n'
        "        return 1\n"
    )
    assert tool.main([], pairs=[PAIR], root=tmp_path) == 0
    return tmp_path


def test_generated_tree_checks_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path)
    out = (root / "pkg/_sync/mod.py").read_text()
    assert out.startswith("# Generated from pkg/_async/mod.py by tools/async_to_sync.py")
    assert "class Pool:" in out and "    def get(self) -> int:" in out
    assert tool.main(["--check"], pairs=[PAIR], root=root) == 0


def test_check_fails_on_a_stale_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path)
    (root / "pkg/_async/mod.py").write_text('"""Changed."""\n')
    capsys.readouterr()
    assert tool.main(["--check"], pairs=[PAIR], root=root) == 1
    assert "out of date" in capsys.readouterr().out


def test_check_fails_on_an_output_whose_source_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    orphan = root / "pkg/_sync/gone.py"
    orphan.write_text(tool.header("pkg/_async/gone.py") + "X = 1\n")
    capsys.readouterr()
    assert tool.main(["--check"], pairs=[PAIR], root=root) == 1
    out = capsys.readouterr().out
    assert "orphaned output pkg/_sync/gone.py" in out and "no longer exists" in out
    assert tool.main(["--check", str(root / "pkg/_async/mod.py")], pairs=[PAIR], root=root) == 1
    # Without --check the tool removes it: it was generated, nothing is lost.
    assert tool.main([], pairs=[PAIR], root=root) == 0
    assert not orphan.exists()


def test_check_fails_on_a_module_neither_generated_nor_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    (root / "pkg/_sync/by_hand.py").write_text(
        '"""Written by hand, but not in the skip list."""\n'
    )
    copied = root / "pkg/_sync/copy.py"
    copied.write_text(tool.header("pkg/_async/mod.py") + "X = 1\n")  # not its source's name
    capsys.readouterr()
    assert tool.main(["--check"], pairs=[PAIR], root=root) == 1
    out = capsys.readouterr().out
    assert "pkg/_sync/by_hand.py: neither generated nor in the skip list" in out
    assert "pkg/_sync/copy.py: generated from pkg/_async/mod.py, not from" in out
    # Neither is removed without --check: only generated files of vanished sources are.
    assert tool.main([], pairs=[PAIR], root=root) == 1
    assert copied.exists() and (root / "pkg/_sync/by_hand.py").exists()


def test_check_fails_on_a_rule_that_never_fires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    monkeypatch.setitem(tool.NAMES, "AsyncNothing", "Nothing")
    monkeypatch.setitem(tool.PHRASES, "a phrase nobody wrote", "")
    capsys.readouterr()
    assert tool.main(["--check"], pairs=[PAIR], root=root) == 1
    out = capsys.readouterr().out
    assert "NAMES['AsyncNothing']" in out and "PHRASES['a phrase nobody wrote']" in out
    # Over a subset of the sources a rule may rightly fire elsewhere: not checked.
    assert tool.main(["--check", str(root / "pkg/_async/mod.py")], pairs=[PAIR], root=root) == 0


def test_the_repository_checks_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """What CI runs: every pair current, no orphan, every rule in use."""
    assert tool.main(["--check"]) == 0, capsys.readouterr().out
