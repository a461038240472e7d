"""Every ```python block of README.md and docs/*.md runs as pasted.

The blocks of one file are run in order, concatenated, in one fresh Python process
(a new user pasting them one after the other into one session), with a timeout.
A failure names the file and the block (its number and first line in the Markdown
file).  Blocks that are not meant to run are fenced as ```text (or ```bash).

Run by hand, ``python tests/test_doc_blocks.py`` prints the count of blocks per file
and the time each file takes.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT_S = 900  # per file: a hang guard, not a measurement (the slowest file takes ~30 s of CPU)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^`\s]*)\s*$")


def doc_files() -> list[pathlib.Path]:
    """README.md and every docs/*.md (new pages are picked up automatically)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(line, source)`` of each ```python block, in order (indented fences, as in
    Markdown lists, are dedented by the fence's indentation)."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, lang, start = m["indent"], m["lang"], i + 1
        j = start
        while j < len(lines) and not re.match(rf"^{re.escape(indent)}```\s*$", lines[j]):
            j += 1
        if j == len(lines):
            raise ValueError(f"{path.name}:{i + 1}: unclosed code fence")
        if lang == "python":
            body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[start:j]]
            blocks.append((start, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def program(path: pathlib.Path, blocks: list[tuple[int, str]]) -> str:
    """One script: the blocks in order, each announced on stderr so a failure names it."""
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    parts = []
    for n, (line, src) in enumerate(blocks, 1):
        parts.append(f"import sys as _doc_sys\nprint('@@block {n} ({rel}:{line})', file=_doc_sys.stderr, flush=True)\n")
        parts.append(src)
    return "\n".join(parts)


def run_file(path: pathlib.Path, tmp_dir) -> tuple[subprocess.CompletedProcess, float, int]:
    blocks = python_blocks(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), MPLBACKEND="Agg",
               OPENBLAS_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", program(path, blocks)], cwd=tmp_dir, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    return proc, time.perf_counter() - t0, len(blocks)


def failing_block(stderr: str) -> str:
    started = re.findall(r"^@@block (.*)$", stderr, re.M)
    return started[-1] if started else "(before the first block)"


FILES = [p for p in doc_files() if python_blocks(p)]


def test_every_page_is_scanned():
    """Pages with python blocks exist, and a page without any is simply skipped."""
    assert {p.name for p in FILES} >= {"README.md", "ties.md", "svds.md", "sharding.md"}


def test_fence_parser(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("a\n```python\nx = 1\n```\n```text\nnot code\n```\n- item\n\n  ```python\n  y = x + 1\n  ```\n")
    assert python_blocks(md) == [(2, "x = 1\n"), (10, "y = x + 1\n")]


def test_a_failing_block_is_named(tmp_path):
    md = tmp_path / "broken.md"
    md.write_text("```python\nx = 1\n```\ntext\n```python\ny = undefined_name\n```\n")
    proc, _, n = run_file(md, tmp_path)
    assert n == 2 and proc.returncode != 0
    assert failing_block(proc.stderr) == "2 (broken.md:5)" and "NameError" in proc.stderr


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_doc_blocks_run(path, tmp_path):
    proc, _, _ = run_file(path, tmp_path)
    if proc.returncode != 0:
        pytest.fail(f"{path.relative_to(ROOT)}: block {failing_block(proc.stderr)} failed:\n{proc.stderr[-3000:]}",
                    pytrace=False)


if __name__ == "__main__":
    import resource
    import tempfile

    total, bad = 0, 0
    for path in FILES:
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with tempfile.TemporaryDirectory() as d:
            proc, dt, n = run_file(path, d)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
        total += n
        status = "ok" if proc.returncode == 0 else f"FAIL at block {failing_block(proc.stderr)}"
        bad += proc.returncode != 0
        print(f"{str(path.relative_to(ROOT)):28s} {n:2d} blocks  {dt:6.1f} s wall  {cpu:6.1f} s CPU  {status}",
              flush=True)
        if proc.returncode:
            print(proc.stderr[-1500:])
    print(f"{len(FILES)} files, {total} blocks, {bad} failing")
    sys.exit(1 if bad else 0)
