"""The tests part of the GPU check: the suite's tests marked ``cuda``, one unit per test.

pytest runs in the part's own process (``pytest.main``) with a plugin that records each test's
outcome as it is reported, so a run stopped at its time limit keeps every test it finished.
Without CUDA the tests skip (``tests/conftest.py``), and are recorded as skipped.
"""

import os

from .gpu_check_record import PartRecord

__all__ = ["OutcomeRecorder", "run_tests"]

ERROR_LINES = 25  # the end of a failure's report kept in the results


def _message(report) -> str:
    """The reason of a skip or the first line of the error of a failure."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, "Skipped: reason")
        return longrepr[2].removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.strip().splitlines()[0]
    text = str(longrepr).strip().splitlines()
    return text[-1] if text else ""


class OutcomeRecorder:
    """A pytest plugin adding one unit per test to a :class:`PartRecord`: ``passed``,
    ``failed`` (the test body), ``error`` (its setup or teardown, or collection) or
    ``skipped``, with the skip reason or the error's first line as ``note`` and, for a failure,
    the end of its report as ``error``."""

    def __init__(self, record: PartRecord):
        self.record = record
        self.durations = {}

    def pytest_collectreport(self, report):
        if report.failed:
            self.record.add(report.nodeid or "collection", "error", note=_message(report))

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        self.durations[nodeid] = self.durations.get(nodeid, 0.0) + report.duration
        if report.when == "call":
            status = {"passed": "passed", "failed": "failed"}.get(report.outcome, "skipped")
        elif report.failed:
            status = "error"
        elif report.when == "setup" and report.skipped:
            status = "skipped"
        else:
            return
        note = "" if report.passed else _message(report)
        if hasattr(report, "wasxfail"):
            note = f"xfail: {report.wasxfail}"
        fields = {"note": note, "wall_s": self.durations[nodeid]}
        if status in ("failed", "error"):
            fields["error"] = "\n".join(report.longreprtext.splitlines()[-ERROR_LINES:])
        self.record.add(nodeid, status, **fields)


def run_tests(plan: dict, record: PartRecord) -> None:
    """``pytest -m <marker> <paths>`` from the repository root, outcomes into ``record``."""
    import pytest

    from .gpu_check import ROOT

    args = ["-q", "-p", "no:cacheprovider", "-m", plan["marker"]]
    args += [os.path.join(ROOT, p) for p in plan["paths"]]
    record.set(command="pytest " + " ".join(["-m", plan["marker"], *plan["paths"]]))
    exit_code = pytest.main(args, plugins=[OutcomeRecorder(record)])
    record.set(exit_code=int(exit_code))
