"""The shell examples of a Markdown document, run as a reader would run them.

Every ```bash block of the document is run, in order, in one bash session (so a
variable set in one block is there in the next), unless the line before the block
says why not: ``<!-- not run: needs a Kafka broker -->``. A block is cut into steps
at blank lines and comment lines; a comment line ``# -> <output>`` (continued on
lines that start ``#    ``), or a command line ending in ``  # -> <output>``, says what
the step before it prints: compared with whitespace ignored, ``…`` standing for
anything. A step that exits non-zero fails.
"""

from __future__ import annotations

import queue
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->")
EXPECTED = "# -> "
ANYTHING = "…"


@dataclass
class Step:
    line: int  # 1-based, in the document
    command: str
    expected: str | None = None


@dataclass
class Block:
    line: int
    steps: list[Step] = field(default_factory=list)


def shell_blocks(markdown: str) -> list[Block]:
    """The document's runnable bash blocks, cut into steps."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    previous = ""
    index = 0
    while index < len(lines):
        text = lines[index]
        if text.strip() == "```bash":
            body, index = _fenced(lines, index + 1)
            if not NOT_RUN.search(previous):
                blocks.append(Block(index - len(body), list(_steps(body, index - len(body)))))
            previous = "```"
        elif text.strip():
            previous = text
        index += 1
    return blocks


def _fenced(lines: list[str], start: int) -> tuple[list[str], int]:
    end = start
    while lines[end].strip() != "```":
        end += 1
    return lines[start:end], end


def _steps(body: list[str], first_line: int) -> Iterator[Step]:
    steps: list[Step] = []
    chunk: list[str] = []
    saying = False  # the comment lines so far say what the last step prints

    def flush() -> None:
        if chunk:
            steps.append(Step(start, "\n".join(chunk)))
            chunk.clear()

    start = first_line
    for offset, text in enumerate(body):
        stripped = text.strip()
        continued = saying and text.lstrip().startswith("#    ")
        if stripped.startswith(EXPECTED) or continued:
            flush()
            said = stripped[len(EXPECTED) :] if not continued else stripped[1:]
            if steps:
                steps[-1].expected = _joined(steps[-1].expected, said.strip())
            saying = True
            continue
        saying = False
        if not stripped or stripped.startswith("#"):
            flush()
            continue
        if not chunk:
            start = first_line + offset + 1
        command, _, trailing = text.partition(f"  {EXPECTED}")
        chunk.append(command.rstrip() if trailing else text)
        if trailing:
            flush()
            steps[-1].expected = trailing.strip()
    flush()
    yield from steps


def _joined(before: str | None, more: str) -> str:
    return more if before is None else f"{before} {more}"


def matches(expected: str, actual: str) -> bool:
    """Equal with whitespace ignored, ``…`` matching any text."""
    wanted = re.sub(r"\s+", "", expected)
    got = re.sub(r"\s+", "", actual)
    pattern = ".*?".join(re.escape(part) for part in wanted.split(ANYTHING))
    return re.fullmatch(pattern, got, flags=re.DOTALL) is not None


class StepTimedOut(Exception):
    """A step did not finish: the session is left in an unknown state."""


class Session:
    """One bash process that keeps its variables between steps."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.marker = f"__step_done_{secrets.token_hex(8)}__"
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.lines.put(text)

    def run(self, command: str, timeout: float = 30.0) -> tuple[int, str]:
        """The step's exit status and what it printed (stdout and stderr)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\nprintf '\\n{self.marker} %s\\n' $?\n")
        self.process.stdin.flush()
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                printed_so_far = "".join(printed)[-500:]
                raise StepTimedOut(f"no end in {timeout:.0f} s: {printed_so_far}") from None
            if text.startswith(self.marker):
                return int(text.split()[1]), "".join(printed).rstrip("\n")
            printed.append(text)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
