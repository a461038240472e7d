"""The one progress bar (jaxsvd/_progress.py): rich, else tqdm, else silent; only on a terminal.

rich and tqdm are optional: "not installed" is simulated by hiding the package
(``sys.modules[name] = None`` makes its import fail), and tqdm by a stand-in
module, so every branch runs whatever this environment has installed.
"""

from __future__ import annotations

import sys
import types

import pytest

from jaxsvd import _progress
from jaxsvd._progress import NoBar, progress_bar


class FakeStream:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, []

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text.append(s)
        return len(s)

    def flush(self):
        pass


def _hide(monkeypatch, name):
    """Make ``import name`` (and its submodules) raise ImportError for this test."""
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, name, None)


def _terminal(monkeypatch):
    """stderr becomes a terminal (in the test body: pytest's capture resets sys.stderr after fixtures)."""
    fake = FakeStream(tty=True)
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.delenv("TERM", raising=False)
    return fake


class FakeTqdm:
    """Records what _TqdmBar asks of tqdm."""

    made = []

    def __init__(self, total, desc, file, leave):
        self.total, self.desc, self.file, self.leave, self.n, self.closed = total, desc, file, leave, 0, False
        FakeTqdm.made.append(self)

    def update(self, n):
        self.n += n

    def set_description_str(self, desc, refresh=True):
        self.desc = desc

    def close(self):
        self.closed = True


def _fake_tqdm(monkeypatch):
    FakeTqdm.made = []
    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeTqdm))


def test_silent_when_disabled_or_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=False))
    assert type(progress_bar(10, "x")) is NoBar  # a pipe, a file, pytest's capture
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=True))
    monkeypatch.setenv("TERM", "dumb")
    assert type(progress_bar(10, "x")) is NoBar
    monkeypatch.delenv("TERM")
    assert type(progress_bar(10, "x", enabled=False)) is NoBar
    with progress_bar(10, "x", enabled=False) as bar:  # the silent bar takes every call
        bar.advance()
        bar.advance(3, "next")


def test_optional_packages_not_imported_when_silent(monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=False))
    for name in ("rich", "tqdm"):
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, mod)
    progress_bar(10, "x")
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=True))
    progress_bar(10, "x", enabled=False)
    assert not [m for m in sys.modules if m.split(".")[0] in ("rich", "tqdm")]


def test_rich_on_a_terminal(monkeypatch):
    pytest.importorskip("rich")
    terminal = _terminal(monkeypatch)
    bar = progress_bar(4, "first", transient=False)
    assert isinstance(bar, _progress._RichBar)
    with bar:
        bar.advance(1, "second stage")
        bar.advance(3)
    out = "".join(terminal.text)
    assert "second stage" in out and "4/4" in out


def test_tqdm_when_rich_is_missing(monkeypatch):
    terminal = _terminal(monkeypatch)
    _hide(monkeypatch, "rich")
    _fake_tqdm(monkeypatch)
    bar = progress_bar(5, "mc", transient=True)
    assert isinstance(bar, _progress._TqdmBar)
    with bar:
        bar.advance(2)
        bar.advance(1, "renamed")
    (t,) = FakeTqdm.made
    assert (t.total, t.n, t.desc, t.file, t.leave, t.closed) == (5, 3, "renamed", terminal, False, True)


def test_silent_when_neither_is_installed(monkeypatch):
    terminal = _terminal(monkeypatch)
    _hide(monkeypatch, "rich")
    _hide(monkeypatch, "tqdm")
    bar = progress_bar(3, "x")
    assert type(bar) is NoBar
    with bar:
        bar.advance(3)
    assert terminal.text == []
