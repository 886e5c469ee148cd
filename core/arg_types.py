"""argparse types the commands share (TF-free): a bad value is refused by the parser, before
any heavy import, with a one-line message naming the flag and the value."""

import argparse
import os
from typing import Callable


def ranged(kind: Callable, low=None, high=None, what: str = "a number", low_open: bool = False):
    """kind(text) within [low, high] (`low_open`: strictly above low)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        below = low is not None and (value <= low if low_open else value < low)
        if below or (high is not None and value > high):
            bounds = (f"({low}, " if low_open else f"[{low}, ") if low is not None else "(-inf, "
            bounds += f"{high}]" if high is not None else "inf)"
            raise argparse.ArgumentTypeError(f"{text} is outside {bounds}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


port = ranged(int, 0, 65535, "a port number")
positive_int = ranged(int, 1, what="a whole number >= 1")
non_negative_int = ranged(int, 0, what="a whole number >= 0")
fraction = ranged(float, 0.0, 1.0, "a fraction")
positive_float = ranged(float, 0.0, what="a number > 0", low_open=True)
non_negative_float = ranged(float, 0.0, what="a number >= 0")
seconds = ranged(float, 0.0, what="seconds")


def boolean(text: str) -> bool:
    """true/false as tensorflow_model_server's --flag=true|false."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def input_file(text: str) -> str:
    """A file that exists and is not a folder."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def input_path(text: str) -> str:
    """A file or a folder that exists."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return text


def input_folder(text: str) -> str:
    """A folder that exists."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: {'not a folder' if os.path.exists(text) else 'no such folder'}")
    return text


def file_to_create(text: str) -> str:
    """A file to write whose missing folders the command creates: only a folder is refused."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file path")
    return text


def output_file(text: str) -> str:
    """A file to write: not a folder, in a folder that exists."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file path")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} does not exist")
    return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (what was wrong, and where to look), not
    the usage block followed by the error; subcommands inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """argparse's, but an unrecognized argument is reported by the subcommand that was
        given, so the hint names its help (`fer-pipeline predict --help`), not the top's."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._chosen(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _chosen(self, parsed) -> "argparse.ArgumentParser":
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                child = action.choices.get(getattr(parsed, action.dest, None) or "")
                if child is not None:
                    return child._chosen(parsed) if isinstance(child, Parser) else child
        return self


def version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("fer-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
