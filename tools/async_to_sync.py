#!/usr/bin/env python
"""Generate the sync modules of poolwarden's I/O shell, and the sync copies of the pool
tests written once for both pools, from their asyncio sources.

    python tools/async_to_sync.py            # (re)write every <output dir>/<name>.py
    python tools/async_to_sync.py --check    # CI: exit 1, saying why, if anything is stale
    python tools/async_to_sync.py FILE...    # only these async sources

Each pair in PAIRS maps a source dir to an output dir: the package's shell
(``src/poolwarden/_async`` -> ``_sync``) and the tests' (``tests/<tier>/_async`` ->
``_sync``). ``--check`` fails when an output differs from what its source gives, when an
output dir holds a file that is neither generated from a current source nor hand-written
(the pair's ``skip`` list) -- say a module left behind by a renamed source -- and, over
all sources, when a rule of NAMES or PHRASES no longer matches anything (a dead rule hides
the next rename that needs one).

Token-based, like the ``unasync`` library: the source is edited in place, token by token,
so comments, blank lines and layout survive; then ``ruff check --select I,F401 --fix`` and
``ruff format`` make the output what a human would have committed. The rules:

* ``await x`` -> ``x``; ``async def|with|for`` -> ``def|with|for``;
* names in NAMES are renamed (in code, and as whole words in strings and comments);
* imports stay as they are: ``_sync`` sits beside ``_async``, so ``from ..mod import x``
  means the same package, and ``from ._compat import …`` picks the hand-written half of the
  same API on each side (``_async/_compat.py``, ``_sync/_compat.py``);
* an ``if ASYNC:`` block is dropped and its ``else:`` block, if any, kept dedented: the
  only way to write code that differs, and it must stay rare.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import subprocess
import sys
import tokenize
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Pair:
    """One async source dir and the dir its sync copies are written to (both relative to
    the root). ``skip`` names the modules written by hand on either side (or on one side
    only): never generated from a source, never taken for an orphaned output."""

    source: str
    output: str
    skip: frozenset[str]


PAIRS = (
    # The housekeeper sleeps in a thread on one side and in an event-loop timer on the
    # other; the watchdog (a thread bounding blocking pings) exists on the sync side only.
    Pair(
        "src/poolwarden/_async",
        "src/poolwarden/_sync",
        frozenset({"__init__.py", "_compat.py", "_housekeeper.py", "_watchdog.py"}),
    ),
    # The pool tests written once: each side's _compat.py holds what differs (how work
    # runs concurrently, how a blocking call is made, the drivers), conftest.py its fixtures.
    Pair(
        "tests/faults/_async",
        "tests/faults/_sync",
        frozenset({"__init__.py", "_compat.py", "conftest.py"}),
    ),
    Pair(
        "tests/unit/_async",
        "tests/unit/_sync",
        frozenset({"__init__.py", "_compat.py", "conftest.py"}),
    ),
)
HEADER = re.compile(r"^# Generated from (\S+) by tools/async_to_sync\.py")

NAMES = {
    "AsyncPool": "Pool",
    "AsyncPoolEngine": "PoolEngine",
    "AsyncPooledConnection": "PooledConnection",
    "AsyncPooledCursor": "PooledCursor",
    "AsyncAdapter": "Adapter",
    "async_for_target": "for_target",
    "async_for_connection": "for_connection",
    "AsyncIterator": "Iterator",
    "StopAsyncIteration": "StopIteration",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
}
#: Exact phrases of docstrings and comments that say something else on the sync side
#: (each within one line; kept few: most text must read right on both sides).
PHRASES = {
    "A pool of database connections for asyncio tasks": "A thread-safe pool of DB-API connections",
    "mysql+asyncmy://": "mysql+pymysql://",
    " (awaited if a coroutine)": "",
}
_WORDS = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b")
_TEXT_RULES = [(re.compile(r"\basync (def|with|for)\b"), r"\1"), (re.compile(r"\bawait "), "")]


#: Tokens holding text: strings, comments, and the literal parts of f-strings (Python 3.12
#: tokenizes those apart from the names inside their braces).
_TEXT_TOKENS = {tokenize.STRING, tokenize.COMMENT} | (
    {tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set()
)


def _text(s: str, used: Counter[str]) -> str:
    """Renames inside a string or comment: whole words only, then the phrases."""
    for pattern, repl in _TEXT_RULES:
        s = pattern.sub(repl, s)

    def rename(match: re.Match[str]) -> str:
        used[match.group(1)] += 1
        return NAMES[match.group(1)]

    s = _WORDS.sub(rename, s)
    for phrase, replacement in PHRASES.items():
        if phrase in s:
            used[phrase] += 1
            s = s.replace(phrase, replacement)
    return s


def drop_async_blocks(lines: list[str]) -> list[str]:
    """``if ASYNC:`` / ``else:`` at any indent: keep the else block, one level out."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.split("#")[0].strip()
        if stripped not in ("if ASYNC:", "if not ASYNC:"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        blocks: list[list[str]] = [[]]
        i += 1
        while i < len(lines):
            cur = lines[i]
            cur_indent = len(cur) - len(cur.lstrip())
            if cur.strip() and cur_indent <= indent:
                if cur_indent == indent and cur.strip() == "else:" and len(blocks) == 1:
                    blocks.append([])
                    i += 1
                    continue
                break
            blocks[-1].append(cur)
            i += 1
        keep = blocks[1] if stripped == "if ASYNC:" and len(blocks) == 2 else []
        if stripped == "if not ASYNC:":
            keep = blocks[0]
        while keep and not keep[-1].strip():
            keep.pop()
        while keep and not keep[0].strip():
            keep.pop(0)
        out.extend(cur[4:] if cur.strip() else cur for cur in keep)
    return out


def unasync_source(source: str, used: Counter[str] | None = None) -> str:
    """The sync text for one async module (before formatting); counts in ``used`` how
    often each rule of NAMES and PHRASES fired."""
    used = Counter() if used is None else used
    lines = drop_async_blocks(source.splitlines(keepends=True))
    # The ASYNC flag has no meaning on the sync side.
    lines = [ln for ln in lines if ln.strip() != "from ._compat import ASYNC"]
    text = "".join(lines)
    lines = text.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    edits: list[tuple[int, int, int, str]] = []  # (row, col_start, col_end, replacement)
    for index, tok in enumerate(tokens):
        (row, col), (erow, ecol) = tok.start, tok.end
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        if tok.type == tokenize.NAME and (
            tok.string == "await"
            or (tok.string == "async" and nxt is not None and nxt.string in ("def", "with", "for"))
        ):
            assert nxt is not None and nxt.start[0] == row, f"line {row}: split after {tok.string}"
            edits.append((row, col, nxt.start[1], ""))
        elif tok.type == tokenize.NAME and tok.string in NAMES:
            used[tok.string] += 1
            edits.append((row, col, ecol, NAMES[tok.string]))
        elif tok.type in _TEXT_TOKENS and row == erow:
            source = lines[row - 1][col:ecol]  # an f-string part may differ ("{{" read "{")
            new = _text(source, used)
            if new != source:
                edits.append((row, col, ecol, new))
        elif tok.type == tokenize.STRING:  # multi-line (docstrings): line by line
            for r in range(row, erow + 1):
                lines[r - 1] = _text(lines[r - 1], used)
    for row, start, end, repl in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + repl + line[end:]
    return "".join(lines)


def check_lock_discipline(src: Path, source: str) -> list[str]:
    """The pool's lock is a ``threading.Lock`` on both sides: an ``await`` while holding it
    would block the event loop (and deadlock it if another task wants the lock)."""
    problems = []
    for node in ast.walk(ast.parse(source, str(src))):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
            isinstance(item.context_expr, ast.Attribute) and item.context_expr.attr == "_lock"
            for item in node.items
        ):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, (ast.Await, ast.AsyncWith, ast.AsyncFor)):
                        problems.append(f"{src}:{sub.lineno}: await while holding the pool lock")
    return problems


def ruff(args: list[str], text: str, filename: Path) -> str:
    cmd = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(filename), "-"]
    done = subprocess.run(cmd, input=text, capture_output=True, text=True, cwd=ROOT)
    if done.returncode not in (0, 1) or not done.stdout:
        raise SystemExit(f"ruff {' '.join(args)} failed on {filename}:\n{done.stderr}")
    return done.stdout


def header(rel: str) -> str:
    """The first two lines of every output: the first one names its source."""
    return (
        f"# Generated from {rel} by tools/async_to_sync.py: do not edit.\n"
        "# Change the async source, then run the tool (CI runs it with --check).\n"
    )


def generate(src: Path, target: Path, root: Path = ROOT, used: Counter[str] | None = None) -> str:
    """The formatted sync text for the async module ``src``, to be written at ``target``."""
    text = header(src.relative_to(root).as_posix()) + unasync_source(src.read_text(), used)
    text = ruff(["check", "--fix", "--quiet", "--select", "I,F401", "--exit-zero"], text, target)
    return ruff(["format", "--quiet"], text, target)


def sources_of(pair: Pair, root: Path = ROOT) -> list[Path]:
    """The async sources of ``pair`` that are generated (all but its skip list)."""
    return sorted(p for p in (root / pair.source).glob("*.py") if p.name not in pair.skip)


def orphans(pair: Pair, root: Path = ROOT) -> list[tuple[Path, str]]:
    """Files in ``pair``'s output dir that nothing accounts for, each with the reason: a
    generated file whose source is gone (or is not the source of that name), or a module
    that is neither generated nor on the skip list."""
    found = []
    for path in sorted((root / pair.output).glob("*.py")):
        if path.name in pair.skip:
            continue
        first = path.read_text().partition("\n")[0]
        match = HEADER.match(first)
        expected = f"{pair.source}/{path.name}"
        if match is None:
            found.append((path, f"neither generated nor in the skip list of {pair.source}"))
        elif not (root / match.group(1)).is_file():
            found.append((path, f"generated from {match.group(1)}, which no longer exists"))
        elif match.group(1) != expected:
            found.append((path, f"generated from {match.group(1)}, not from {expected}"))
    return found


def unused_rules(used: Counter[str]) -> list[str]:
    """The entries of NAMES and PHRASES that matched nothing (``used`` from a run over all
    sources)."""
    return [f"NAMES[{k!r}]" for k in NAMES if not used[k]] + [
        f"PHRASES[{k!r}]" for k in PHRASES if not used[k]
    ]


def _pair_of(src: Path, pairs: Iterable[Pair], root: Path) -> Pair:
    for pair in pairs:
        if src.parent == (root / pair.source).resolve() and src.name not in pair.skip:
            return pair
    raise SystemExit(f"{src}: not a generated async source of any pair in PAIRS")


def main(
    argv: Sequence[str] | None = None, pairs: Sequence[Pair] = PAIRS, root: Path = ROOT
) -> int:
    """Generate (or with ``--check``, verify) every pair's outputs; 0 when all is well."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if any output is stale")
    parser.add_argument("files", nargs="*", type=Path, help="async sources (default: all)")
    opts = parser.parse_args(argv)
    root = root.resolve()
    if opts.files:
        jobs = [(src, _pair_of(src, pairs, root)) for src in (f.resolve() for f in opts.files)]
    else:
        jobs = [(src.resolve(), pair) for pair in pairs for src in sources_of(pair, root)]
    problems = [p for src, _ in jobs for p in check_lock_discipline(src, src.read_text())]
    if problems:
        print("\n".join(problems))
        return 2
    used: Counter[str] = Counter()
    stale = 0
    for src, pair in jobs:
        target = root / pair.output / src.name
        text = generate(src, target, root, used)
        current = target.read_text() if target.exists() else ""
        if current == text:
            continue
        if opts.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), str(target), "generated"
                )
            )
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(root)}")
    failed = bool(stale)
    if stale:
        print(f"\n{stale} generated module(s) out of date: run tools/async_to_sync.py")
    for pair in pairs:
        for path, why in orphans(pair, root):
            if not opts.check and "no longer exists" in why:
                path.unlink()  # generated, and its source is gone: nothing is lost
                print(f"removed {path.relative_to(root)} ({why})")
                continue
            failed = True
            print(f"orphaned output {path.relative_to(root)}: {why}")
    if not opts.files:
        dead = unused_rules(used)
        if dead:
            failed = True
            print("rename rules that matched nothing in any source (remove them):")
            print("\n".join(f"  {rule}" for rule in dead))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
