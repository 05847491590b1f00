"""Errors a user fixes in their own files, and how the command-line tools report them.

An :class:`UserInputError` says everything the user needs in its message (the file, the key, the
command to run): ``tools/train_net.py`` and ``tools/check_dataset.py`` print that message on one
line instead of a traceback (:func:`one_line_errors`). Each subclass also derives from the
built-in exception that code catching it before expects (``ValueError``, ``FileNotFoundError``,
``OSError``).
"""

import contextlib
import sys

__all__ = [
    "UserInputError",
    "DatasetFileError",
    "MissingTeacherWeightsError",
    "ConfigChangedError",
    "NoSpaceLeftError",
    "UnfinishedRunError",
    "one_line_errors",
]


class UserInputError(Exception):
    """An error in the user's data, config or files; its message is complete on its own."""


class DatasetFileError(UserInputError, ValueError):
    """A registered dataset's annotation or image files cannot be used; the message names them."""


class MissingTeacherWeightsError(UserInputError, FileNotFoundError):
    """``MODEL.DISTILL.TEACHER.WEIGHTS`` does not exist; the message gives the command that
    trains the teacher."""


class ConfigChangedError(UserInputError, ValueError):
    """``--resume`` from a checkpoint written under another config (e.g. other methods)."""


class UnfinishedRunError(UserInputError, ValueError):
    """A release asked of a run that has not finished training."""


class NoSpaceLeftError(UserInputError, OSError):
    """A file could not be written because its device is full; the message names the path."""


@contextlib.contextmanager
def one_line_errors():
    """Report a :class:`UserInputError` as one line ``ERROR: <message>`` on stderr and exit with
    status 1, without a traceback. Other exceptions pass unchanged."""
    try:
        yield
    except UserInputError as e:
        sys.stdout.flush()
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(1)
