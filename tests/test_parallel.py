"""--backend ray: the same numbers as --backend local, and one-line errors (ese.parallel).

One local Ray with 2 CPUs (the session fixture ``ray_cluster``) serves every test.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path[:0] = [str(Path(__file__).parent / "accel"), str(Path(__file__).parent / "compress")]

from accel_models import random_qmodel  # noqa: E402
from prune_toys import toy_config, toy_sets, train_dense  # noqa: E402

from ese import parallel  # noqa: E402
from ese.cli import app  # noqa: E402
from ese.compress.prune import make_pruner  # noqa: E402
from ese.compress.qmodel import save_qmodel  # noqa: E402
from ese.compress.sensitivity import sensitivity_table  # noqa: E402
from ese.model.checkpoint import load_checkpoint  # noqa: E402

runner = CliRunner()


@pytest.mark.slow
def test_sweep_on_ray_gives_the_local_table(ray_cluster, tmp_path) -> None:
    models = []
    for name, seed in (("a", 1), ("b", 2)):
        models.append(tmp_path / f"{name}.qnpz")
        save_qmodel(models[-1], random_qmodel(D=10, H=32, P=16, density=0.2, seed=seed))
    grid = ["--pes", "2,4", "--queue-depths", "1,4", "--index-bits", "3,4", "--channels", "1,2", "--frames", "3",
            "--full-grid"]
    outs = {}
    for backend in ("local", "ray"):
        outs[backend] = tmp_path / backend
        res = runner.invoke(app, ["sweep", *map(str, models), "--out", str(outs[backend]), *grid,
                                  "--jobs", "1", "--backend", backend])
        assert res.exit_code == 0, res.output
    local, ray = (json.loads((outs[b] / "sweep.json").read_text()) for b in ("local", "ray"))
    # per model: PEs x queues at 4 and (--full-grid) at 3 bits, 2 index widths, 2 channel counts
    assert len(local["rows"]) == 2 * (4 + 4 + 2 + 2) and local == ray  # every number, the proposal too
    assert {r["family"] for r in local["rows"]} == {"pes_x_queue", "pes_x_queue_x_index", "index_bits", "channels"}
    assert (outs["local"] / "sweep.md").read_text() == (outs["ray"] / "sweep.md").read_text()


@pytest.mark.slow
def test_sensitivity_on_ray_gives_the_local_table(ray_cluster, tmp_path) -> None:
    cfg, sets = toy_config(), toy_sets()
    model, _ = load_checkpoint(train_dense(cfg, sets, tmp_path / "dense.pt"))
    args = (model, sets["dev"], cfg.train.output_delay, make_pruner("pes:4"), (1.0, 0.5, 0.2, 0.05))
    local = sensitivity_table(*args, progress=False)
    ray = sensitivity_table(*args, progress=False, backend="ray", threads=1)
    assert ray == local
    pers = [p for m in local["matrices"].values() for p in m["per"]]
    assert max(pers) > local["dense_per"]  # the scan measured something


@pytest.mark.slow
def test_project_errors_in_a_ray_task_keep_their_line(ray_cluster, tmp_path) -> None:
    cfg, sets = toy_config(), toy_sets()
    model, _ = load_checkpoint(train_dense(cfg, sets, tmp_path / "dense.pt"))
    from ese.errors import CheckpointError

    with _nan(model):
        with pytest.raises(CheckpointError, match="NaN or inf"):
            sensitivity_table(model, sets["dev"], 2, make_pruner("none"), (0.5,), progress=False,
                              backend="ray", names=["layers.0.w_x"])


class _nan:
    """A NaN in the first weight of layers.0.w_x for the block."""

    def __init__(self, model) -> None:
        self.p = model.layers[0].w_x

    def __enter__(self) -> None:
        import torch

        with torch.no_grad():
            self.old = float(self.p[0, 0])
            self.p[0, 0] = float("nan")

    def __exit__(self, *exc) -> None:
        import torch

        with torch.no_grad():
            self.p[0, 0] = self.old


def test_an_unreachable_ray_address_fails_in_seconds_with_one_line(tmp_path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on (loopback only)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = tmp_path / "a.qnpz"
    save_qmodel(model, random_qmodel(D=10, H=32, P=16, density=0.2, seed=1))
    t0 = time.perf_counter()
    res = runner.invoke(app, ["sweep", str(model), "--out", str(tmp_path / "sw"), "--backend", "ray",
                              "--ray-address", f"127.0.0.1:{port}"])
    assert time.perf_counter() - t0 < 10
    assert isinstance(res.exception, parallel.BackendError)
    assert f"no Ray cluster answers at '127.0.0.1:{port}'" in str(res.exception)
    res = runner.invoke(app, ["sweep", str(model), "--backend", "spark"])
    assert "--backend must be local or ray" in str(res.exception)


def test_without_ray_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(parallel.BackendError, match=r"pip install -e '\.\[distributed\]'"):
        parallel.map_points(lambda shared, p: p, None, [1], backend="ray")
    assert parallel.map_points(lambda shared, p: shared + p, 10, [1, 2]) == [11, 12]  # local needs no Ray
