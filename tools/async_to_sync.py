#!/usr/bin/env python
"""Generate the sync modules of poolwarden's I/O shell from their asyncio sources.

    python tools/async_to_sync.py            # (re)write src/poolwarden/_sync/<name>.py
    python tools/async_to_sync.py --check    # CI: exit 1, with a diff, if one is stale

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASYNC_DIR = ROOT / "src" / "poolwarden" / "_async"
SYNC_DIR = ROOT / "src" / "poolwarden" / "_sync"
#: Hand-written on both sides (or async-only): never generated. The housekeeper sleeps in
#: a thread on one side and in an event-loop timer on the other.
SKIP = {"__init__.py", "_compat.py", "_housekeeper.py"}

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
    "aclose": "close",
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


def _text(s: str) -> str:
    """Renames inside a string or comment: whole words only, then the phrases."""
    for pattern, repl in _TEXT_RULES:
        s = pattern.sub(repl, s)
    s = _WORDS.sub(lambda m: NAMES[m.group(1)], s)
    for phrase, replacement in PHRASES.items():
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


def unasync_source(source: str) -> str:
    """The sync text for one async module (before formatting)."""
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
            edits.append((row, col, ecol, NAMES[tok.string]))
        elif tok.type in _TEXT_TOKENS and row == erow:
            source = lines[row - 1][col:ecol]  # an f-string part may differ ("{{" read "{")
            new = _text(source)
            if new != source:
                edits.append((row, col, ecol, new))
        elif tok.type == tokenize.STRING:  # multi-line (docstrings): line by line
            for r in range(row, erow + 1):
                lines[r - 1] = _text(lines[r - 1])
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


def generate(src: Path) -> tuple[Path, str]:
    target = SYNC_DIR / src.name
    rel = src.relative_to(ROOT)
    header = (
        f"# Generated from {rel} by tools/async_to_sync.py: do not edit.\n"
        "# Change the async source, then run the tool (CI runs it with --check).\n"
    )
    text = header + unasync_source(src.read_text())
    text = ruff(["check", "--fix", "--quiet", "--select", "I,F401", "--exit-zero"], text, target)
    return target, ruff(["format", "--quiet"], text, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if any output is stale")
    parser.add_argument("files", nargs="*", type=Path, help="async sources (default: all)")
    opts = parser.parse_args()
    sources = opts.files or sorted(p for p in ASYNC_DIR.glob("*.py") if p.name not in SKIP)
    stale = 0
    problems = [p for src in sources for p in check_lock_discipline(src, src.read_text())]
    if problems:
        print("\n".join(problems))
        return 2
    for src in sources:
        target, text = generate(src.resolve())
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
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print(f"\n{stale} generated module(s) out of date: run tools/async_to_sync.py")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
