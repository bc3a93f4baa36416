"""The README's console examples: each command (``$ `` lines, with continuations) and the output shown under it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Values that differ on every run: each must be there and non-empty, whatever it is.
_PER_RUN = re.compile(r'("(?:backend_id|request_id)": ?)"[^"]+"')
_PER_RUN_NUMBERS = re.compile(r'("partition": ?|"offset": ?")\d+')  # where the broker put the event


@dataclass(frozen=True)
class Example:
    """One command of the README and the output shown under it."""

    argv: list[str]
    output: str


def readme_examples(section: str) -> list[Example]:
    """The commands of the console block of the README's ``section`` (a ``## `` heading), and their output."""
    text = (ROOT / "README.md").read_text().split(section, 1)[1].split("\n## ", 1)[0]
    block = text.split("```console\n", 1)[1].split("\n```", 1)[0]
    examples: list[Example] = []
    for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
        lines, command = chunk.splitlines(), ""
        while True:  # a command goes on after a trailing `\` or inside an open quote
            command += lines.pop(0) + "\n"
            if not command.endswith("\\\n") and _closed(command):
                break
        argv = shlex.split(command.replace("\\\n", ""))
        examples.append(Example(argv, "\n".join(lines).strip() + "\n"))
    return examples


def masked(output: str) -> str:
    """``output`` with the values that change on every run (backend and request ids, partition, offset) blanked."""
    return _PER_RUN_NUMBERS.sub(r"\1N", _PER_RUN.sub(r'\1"..."', output))


def _closed(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # "No closing quotation"
        return False
    return True
