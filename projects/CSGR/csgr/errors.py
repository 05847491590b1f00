"""Errors a user fixes in their own files, and how the command-line tools report them.

An :class:`UserInputError` says everything the user needs in its message (the file, the key, the
command to run): ``tools/train_net.py`` and ``tools/check_dataset.py`` print that message on one
line instead of a traceback (:func:`one_line_errors`). Each subclass also derives from the
built-in exception that code catching it before expects (``ValueError``, ``FileNotFoundError``,
``OSError``). A training that diverged (``NonFiniteLossError``) keeps its traceback and exits with
its own status, :data:`DIVERGED_EXIT_STATUS`, so that scripts (the benchmark runner) tell it from
other failures without reading the log.
"""

import contextlib
import importlib
import sys
import traceback
from typing import Optional, Tuple

__all__ = [
    "UserInputError",
    "DatasetFileError",
    "MissingTeacherWeightsError",
    "MissingTeacherConfigError",
    "ConfigChangedError",
    "ConfigTypeError",
    "UnknownConfigKeyError",
    "NoSpaceLeftError",
    "UnfinishedRunError",
    "DIVERGED_EXIT_STATUS",
    "user_error_in_worker",
    "one_line_errors",
]


class UserInputError(Exception):
    """An error in the user's data, config or files; its message is complete on its own."""


class DatasetFileError(UserInputError, ValueError):
    """A registered dataset's annotation or image files cannot be used; the message names them."""


class MissingTeacherWeightsError(UserInputError, FileNotFoundError):
    """``MODEL.DISTILL.TEACHER.WEIGHTS`` does not exist; the message gives the command that
    trains the teacher."""


class MissingTeacherConfigError(UserInputError, FileNotFoundError):
    """``MODEL.DISTILL.TEACHER.CONFIG_FILE`` is empty or names no file."""


class ConfigChangedError(UserInputError, ValueError):
    """``--resume`` from a checkpoint written under another config (e.g. other methods)."""


class UnfinishedRunError(UserInputError, ValueError):
    """A release asked of a run that has not finished training."""


class ConfigTypeError(UserInputError, ValueError):
    """A config file or opt gives a key a value of another type than its default's."""


class UnknownConfigKeyError(UserInputError, KeyError):
    """A config file or opt names a key that neither Detectron2 nor CSGR has."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


class NoSpaceLeftError(UserInputError, OSError):
    """A file could not be written because its device is full; the message names the path."""


# Exit status of tools/train_net.py when training stopped because it diverged (1: other errors).
DIVERGED_EXIT_STATUS = 3


def _worker_error(error: Exception) -> Tuple[Optional[type], str]:
    """The class and message of the project's exception raised in a worker process.

    With several processes (``--num-gpus 2``), Detectron2's ``launch`` runs ``main`` under
    ``torch.multiprocessing``, which hands the parent only the worker's traceback as text
    (``ProcessRaisedException``). Its last exception line ``csgr.<module>.<Error>: <message>``
    names the class; the message runs to the end of the text.

    Returns:
        (class, message), or (None, "") when the last error of the text is not one of csgr's.
    """
    lines = str(error).rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        name, sep, first = lines[i].partition(": ")
        module, _, cls_name = name.rpartition(".")
        if not sep or not module.startswith("csgr") or not cls_name.isidentifier():
            continue
        try:
            cls = getattr(importlib.import_module(module), cls_name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls, "\n".join([first, *lines[i + 1 :]])
    return None, ""


def user_error_in_worker(error: Exception) -> Optional[str]:
    """The message of a :class:`UserInputError` raised in a worker process (see
    :func:`_worker_error`), or None when the worker's error is not one."""
    cls, message = _worker_error(error)
    return message if cls is not None and issubclass(cls, UserInputError) else None


def _exit_with(message: str):
    sys.stdout.flush()
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


@contextlib.contextmanager
def one_line_errors():
    """Report a :class:`UserInputError` as one line ``ERROR: <message>`` on stderr and exit with
    status 1, without a traceback, also when a worker process of a multi-process launch raised
    it (:func:`user_error_in_worker`). A divergence (``NonFiniteLossError``, in this process or
    a worker) prints its traceback and exits with :data:`DIVERGED_EXIT_STATUS`. Other
    exceptions pass unchanged."""
    from torch.multiprocessing import ProcessRaisedException

    from .engine.nan_guard import NonFiniteLossError

    try:
        yield
    except UserInputError as e:
        _exit_with(str(e))
    except NonFiniteLossError:
        traceback.print_exc()
        sys.exit(DIVERGED_EXIT_STATUS)
    except ProcessRaisedException as e:
        cls, message = _worker_error(e)
        if cls is not None and issubclass(cls, UserInputError):
            _exit_with(message)
        if cls is not None and issubclass(cls, NonFiniteLossError):
            print(str(e), file=sys.stderr)
            sys.exit(DIVERGED_EXIT_STATUS)
        raise
