"""The live progress board, driven by a fake run that appends to metrics.json like Detectron2."""

import io
import json
import os
import subprocess
import sys

from tiny_models import ROOT

from csgr.utils.progress import MetricsTail, ProgressBoard, format_seconds, inference_progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def append(path, *records, newline=True):
    with open(path, "a") as f:
        for i, r in enumerate(records):
            f.write(json.dumps(r) + ("\n" if newline or i < len(records) - 1 else ""))


def train_record(iteration, time_s, loss):
    return {"iteration": iteration, "time": time_s, "total_loss": loss, "lr": 0.01}


def board_with_two_stages(tmp_path, stream, interactive, clock):
    board = ProgressBoard(stream=stream, interactive=interactive, interval=60.0, clock=clock)
    for key, stage, total in (("teacher", 0, 100), ("baseline", 1, 40), ("csgr", 1, 40)):
        (tmp_path / key).mkdir()
        board.add(key, f"{key} seed 1", total, stage=stage, output_dir=str(tmp_path / key))
    return board


def test_metrics_tail_reads_complete_lines_only_and_restarts(tmp_path):
    path = tmp_path / "metrics.json"
    tail = MetricsTail(str(path))
    assert tail.read_new() == []  # no file yet
    append(path, train_record(19, 0.5, 2.0))
    with open(path, "a") as f:
        f.write('{"iteration": 39, "time"')  # a line being written
    assert [r["iteration"] for r in tail.read_new()] == [19]
    with open(path, "a") as f:
        f.write(': 0.5, "total_loss": 1.5}\n')
    assert [r["total_loss"] for r in tail.read_new()] == [1.5]
    path.write_text(json.dumps(train_record(0, 0.4, 3.0)) + "\n")  # restarted run: file shrank
    assert [r["iteration"] for r in tail.read_new()] == [0]


def test_plain_lines_when_not_a_terminal(tmp_path):
    out, clock = io.StringIO(), FakeClock()
    board = board_with_two_stages(tmp_path, out, interactive=False, clock=clock)
    board.start("teacher")
    assert out.getvalue().splitlines()[-1].startswith("[teacher seed 1] it 0/100 (0%)")

    append(tmp_path / "teacher" / "metrics.json", train_record(19, 0.5, 2.25))
    clock.now = 10.0
    board.refresh()
    line = out.getvalue().splitlines()[-1]
    assert "it 20/100 (20%)" in line and "0.50 s/it" in line and "loss 2.250" in line
    # run: 80 it left at 0.5 s; stage 1 (not started) estimated at the slowest known s/it
    assert "eta 40s" in line and f"job eta {format_seconds(40 + 40 * 0.5)}" in line

    n_lines = len(out.getvalue().splitlines())
    append(tmp_path / "teacher" / "metrics.json", train_record(39, 0.5, 2.0))
    clock.now = 30.0  # within the interval: no new line
    board.refresh()
    assert len(out.getvalue().splitlines()) == n_lines
    clock.now = 75.0
    board.refresh()
    assert "it 40/100" in out.getvalue().splitlines()[-1]

    append(tmp_path / "teacher" / "metrics.json", train_record(99, 0.5, 1.0), {"bbox/AP": 19.5})
    board.finish("teacher", ap=19.5)
    assert out.getvalue().splitlines()[-1].startswith("[teacher seed 1] it 100/100 (100%)")
    assert "AP 19.50" in out.getvalue().splitlines()[-1]

    board.start("baseline")
    board.start("csgr")
    append(tmp_path / "baseline" / "metrics.json", train_record(19, 0.25, 1.0))
    append(tmp_path / "csgr" / "metrics.json", train_record(9, 1.0, 1.5))
    clock.now = 200.0
    board.refresh()
    last = out.getvalue().splitlines()[-2:]
    assert last[0].startswith("[baseline seed 1] it 20/40") and "eta 5s" in last[0]
    assert last[1].startswith("[csgr seed 1] it 10/40") and "eta 30s" in last[1]
    assert board.job_eta() == 30.0  # side by side: the slower run
    board.finish("baseline", state="failed")
    assert out.getvalue().splitlines()[-1] == "[baseline seed 1] it 20/40 (50%)  FAILED"
    board.finish("csgr", state="diverged")
    assert out.getvalue().splitlines()[-1] == "[csgr seed 1] it 10/40 (25%)  DIVERGED"
    assert board.job_eta() == 0.0


def test_evaluation_progress_from_the_log(tmp_path):
    """While a run evaluates, its line shows Detectron2's inference progress and ETA (read from
    the run's log.txt), and the job ETA counts it."""
    out, clock = io.StringIO(), FakeClock()
    board = board_with_two_stages(tmp_path, out, interactive=False, clock=clock)
    board.start("teacher")
    append(tmp_path / "teacher" / "metrics.json", train_record(99, 0.5, 1.0))
    clock.now = 10.0
    board.refresh()
    assert out.getvalue().splitlines()[-1].endswith("evaluating  | job eta 20s")
    with open(tmp_path / "teacher" / "log.txt", "a") as f:
        f.write(
            "[12/06 10:00:00 d2.evaluation.evaluator]: Inference done 107/200. Dataloading: "
            "0.0010 s/iter. Inference: 1.4 s/iter. Eval: 0.0001 s/iter. Total: 1.5 s/iter. "
            "ETA=0:02:18\n"
        )
    clock.now = 100.0
    board.refresh()
    line = out.getvalue().splitlines()[-1]
    assert "evaluating 107/200 images, eta 2m18s" in line, line
    assert board.job_eta() == 138 + 40 * 0.5  # this evaluation, then stage 1
    append(tmp_path / "teacher" / "metrics.json", {"iteration": 99, "bbox/AP": 19.5})
    board.finish("teacher", ap=19.5)
    assert "AP 19.50" in out.getvalue().splitlines()[-1]


def test_inference_progress_parses_detectron2_lines():
    line = "Inference done 11/3000. Dataloading: 0.0 s/iter. ETA=1 day, 2:03:04"
    assert inference_progress(line) == (11, 3000, 86400 + 7384.0)
    assert inference_progress("Start inference on 200 batches") is None


def test_reused_runs_show_no_iteration(tmp_path):
    """A reused run (or a reused divergence) never trained: its line has no "it 0/N"."""
    out = io.StringIO()
    board = board_with_two_stages(tmp_path, out, interactive=False, clock=FakeClock())
    board.finish("teacher", ap=20.0, state="reused")
    assert out.getvalue().splitlines()[-1] == "[teacher seed 1] reused  AP 20.00"
    board.finish("csgr", state="diverged")
    assert out.getvalue().splitlines()[-1] == "[csgr seed 1] DIVERGED (recorded)"


def test_bars_in_a_terminal(tmp_path):
    out, clock = io.StringIO(), FakeClock()
    board = board_with_two_stages(tmp_path, out, interactive=True, clock=clock)
    board.finish("teacher", ap=20.0, state="reused")
    assert "[teacher seed 1]" in out.getvalue() and "reused  AP 20.00" in out.getvalue()
    board.start("baseline")
    board.start("csgr")
    append(tmp_path / "baseline" / "metrics.json", train_record(19, 0.25, 1.0))
    board.refresh()
    screen = out.getvalue()
    assert "baseline seed 1:  50%|" in screen and "20/40" in screen
    assert "0.25 s/it  loss 1.000  eta 5s" in screen
    assert "csgr seed 1:   0%|" in screen  # its own line, still at 0
    board.finish("baseline", ap=7.5)
    board.finish("csgr", ap=9.0)
    assert "AP 7.50" in out.getvalue() and "AP 9.00" in out.getvalue()


def _env(**extra):
    """The environment without the user's own warning settings."""
    drop = ("PYTHONWARNINGS", "CSGR_ALL_WARNINGS")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


TOOLS = sorted(
    f
    for f in os.listdir(os.path.join(ROOT, "tools"))
    if f.endswith(".py")
    and f != "install_detectron2.py"  # runs before the venv exists; imports nothing heavy
)


def test_no_dependency_warning_at_the_start_of_any_tool():
    assert "train_net.py" in TOOLS
    for tool in TOOLS:
        proc = subprocess.run(
            [sys.executable, os.path.join("tools", tool), "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=_env(),
        )
        assert proc.returncode == 0, (tool, proc.stderr)
        assert "usage:" in proc.stdout, tool
        assert "warn" not in proc.stderr.lower(), (tool, proc.stderr)


def test_filters_are_narrow_and_can_be_turned_off():
    code = "import csgr.utils.quiet as q; print(q.install_quiet_filters())"
    for env, expected in ((_env(CSGR_ALL_WARNINGS="1"), "False"), (_env(), "True")):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == expected, out.stderr
    # a user's own warnings still show, even one with the filtered text from the user's module
    code = (
        "import warnings, csgr\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.warn('`torch.jit.script` is deprecated. mine', FutureWarning)\n"
        "    warnings.warn('a user warning', UserWarning)\n"
        "print(len(w))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    assert out.stdout.strip() == "2", out.stderr


def test_is_fx_tracing_note_is_filtered_and_shown_on_request():
    code = (
        "import csgr\n"
        "from torch.fx import _symbolic_trace as st\n"
        "st.is_fx_tracing_warning()\n"
    )
    quiet = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr
    assert "is_fx_tracing" not in quiet.stderr
    env = _env(CSGR_ALL_WARNINGS="1")
    loud = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "is_fx_tracing will return true" in loud.stderr, loud.stderr
