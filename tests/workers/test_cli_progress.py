"""The CLI's progress display: a bar or a count on a terminal, nothing when piped."""

from __future__ import annotations

import io

from workers.cli.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_it_writes_nothing():
    stream = io.StringIO()
    with Progress("replaying", total=3, stream=stream) as progress:
        for _ in range(3):
            progress()
    assert stream.getvalue() == "" and progress.count == 3


def test_on_a_terminal_a_bar_with_the_total():
    stream = Terminal()
    with Progress("replaying", total=4, stream=stream, every=0) as progress:
        for _ in range(4):
            progress()
    drawn = stream.getvalue().split("\r\x1b[2K")
    assert drawn[1].startswith("replaying [------------------------------] 0/4   0%")
    assert drawn[3].startswith("replaying [###############---------------] 2/4  50%")
    assert drawn[-1].startswith("replaying [##############################] 4/4 100%")
    assert stream.getvalue().endswith("\n")


def test_on_a_terminal_a_count_when_the_total_is_unknown():
    stream = Terminal()
    progress = Progress("conversations scanned", stream=stream)
    for _ in range(30):
        progress()
    progress.done()
    assert stream.getvalue().rsplit("\r\x1b[2K", 1)[1].startswith("conversations scanned: 30  ")
