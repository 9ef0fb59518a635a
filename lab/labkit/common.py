"""What every part of labctl uses: its one error type, its output and how it names paths."""
from pathlib import Path


class LabError(Exception):
    """One sentence for the user; labctl prints it and exits 1."""


def say(msg):
    print(msg, flush=True)


def rel(path):
    """A path relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
