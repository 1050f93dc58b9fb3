"""`modfit grid --executor ray`: cells run as Ray tasks on a local cluster of this machine's cores,
while the driver stays the store's only writer (resume and `kill -9` safety as in the local grid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from modfit.cli import main
from modfit.grid import expand, parse_spec, run_grid
from modfit.store import open_store
from test_grid import tiny_spec


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module (starting one takes seconds): two CPUs, no dashboard."""
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


class RecordWorker:
    """A training-loop callback that notes, in a file named after the cell's seed, the process it ran in."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.path = folder / f"seed{seed}.pid"

    def on_step(self, state) -> None:
        pass

    def on_end(self, state) -> None:
        self.path.write_text(str(os.getpid()))


def test_cells_run_as_ray_tasks_and_a_rerun_does_nothing(
    ray_cluster, tiny_bert, text_dataset, tmp_path, capsys
):
    from modfit.grid.executors import RayExecutor

    spec = tiny_spec(tiny_bert, text_dataset, seeds=[0, 1])
    store_file = tmp_path / "study.sqlite"
    with open_store(store_file, create=True) as store:
        summary = run_grid(
            expand(parse_spec(spec)), store, progress=False, log=lambda line: None, executor=RayExecutor(),
            callbacks=lambda cell: [RecordWorker(tmp_path, cell.coordinates.seed)],
        )  # fmt: skip
    assert summary.ran == 2 and not summary.failed
    workers = {int((tmp_path / f"seed{seed}.pid").read_text()) for seed in (0, 1)}
    assert os.getpid() not in workers  # each cell trained in a Ray worker, not in this process
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    assert main(["grid", str(spec_file), "--store", str(store_file), "--executor", "ray", "--quiet"]) == 0
    assert "2 done before, 0 ran" in capsys.readouterr().out
    with open_store(store_file) as store:
        assert [(c.status, c.attempts) for c in store.cells()] == [("done", 1), ("done", 1)]
        assert all(len(c.history) == 3 for c in store.cells())


KILLED_DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    from modfit.grid import expand, read_spec, run_grid
    from modfit.grid.executors import RayExecutor
    from modfit.store import open_store

    def die_after_first(line):
        '''SIGKILL this driver (no clean-up of any kind) right after it stored its first cell.'''
        print(line, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    with open_store(sys.argv[2], create=True) as store:
        run_grid(expand(read_spec(sys.argv[1])), store, progress=False, log=die_after_first,
                 executor=RayExecutor(address=sys.argv[3]))
    """
)


def test_a_ray_driver_killed_mid_run_resumes_with_every_cell_once(
    ray_cluster, tiny_bert, text_dataset, tmp_path
):
    from modfit.grid.executors import RayExecutor

    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(tiny_bert, text_dataset, seeds=[0, 1])))
    store_file = tmp_path / "study.sqlite"
    # the environment as it is now: it holds the token settings of the cluster the fixture started
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-c", KILLED_DRIVER, str(spec_file), str(store_file), ray_cluster],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = driver.communicate(timeout=300)
    finally:
        _end_session(driver.pid)
    assert driver.returncode == -signal.SIGKILL, err
    assert out.startswith("done toy")
    with open_store(store_file) as store:
        assert sorted(c.status for c in store.cells()) == ["done", "running"]
        summary = run_grid(
            expand(parse_spec(yaml.safe_load(spec_file.read_text()))), store, progress=False,
            log=lambda line: None, executor=RayExecutor(),
        )  # fmt: skip
        cells = store.cells()
        rows = store.connection.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert summary.ran == 1 and rows == 2
    assert sorted((c.status, c.attempts) for c in cells) == [("done", 1), ("done", 2)]


def _end_session(pid: int) -> None:
    """Stop what the killed driver left in its own session (it joined the test's cluster, so nothing
    of the cluster lives there; this only guards against a driver that hangs)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    time.sleep(0.1)


def test_a_missing_ray_is_one_line_and_no_store(tiny_bert, text_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(tiny_bert, text_dataset)))
    store_file = tmp_path / "study.sqlite"
    assert main(["grid", str(spec_file), "--store", str(store_file), "--executor", "ray"]) == 2
    assert capsys.readouterr().err.strip() == (
        "modfit grid: error: --executor ray needs Ray: pip install 'modfit[ray]'"
    )
    assert not store_file.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--gpus-per-cell", "1"], "--gpus-per-cell only go with --executor ray"),
        (["--executor", "ray", "--cpus-per-cell", "0"], "use --cpus-per-cell above 0"),
    ],
)
def test_bad_executor_flags_are_one_line(tmp_path, capsys, flags, message):
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text("datasets: [sst2]\n")
    assert main(["grid", str(spec_file), "--store", str(tmp_path / "s.sqlite"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "s.sqlite").exists()
