"""Where independent points of a job run: here (``local``) or as Ray tasks (``ray``).

``ese sweep``, ``ese sensitivity`` and ``ese tune`` take ``--backend local|ray`` and
``--ray-address``. :func:`map_points` runs ``fn(shared, point)`` for every point and returns
the results in the order of the points, so the tables, JSON and plots built from them are the
same whichever backend computed them. With Ray, ``shared`` (the models, the dev set) is put in
the object store once (``ray.put``) and every point is one task that reads it from there.

Ray is optional (``pip install -e '.[distributed]'``); only ``--backend ray`` needs it, and
without it says exactly what to install. ``--ray-address`` is empty for a Ray started here (and
stopped at the end), ``auto`` to join the cluster this machine belongs to, or ``HOST:PORT`` of a
cluster's head; an address nobody answers on fails within seconds with one line (Ray itself
would retry for a minute or more).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ese.errors import ConfigError, EseError

BACKENDS = ("local", "ray")
INSTALL_HINT = "pip install -e '.[distributed]'  (or: pip install 'ray[tune]>=2.9')"
CONNECT_TIMEOUT_S = 5.0


class BackendError(EseError):
    """The requested backend cannot run here (Ray missing, cluster unreachable)."""


def check_backend(backend: str) -> str:
    b = str(backend).strip().lower()
    if b not in BACKENDS:
        raise ConfigError(f"--backend must be local or ray, not {backend!r}")
    return b


def import_ray():
    """The ``ray`` module, or BackendError naming what to install."""
    try:
        import ray
    except ImportError:
        raise BackendError(f"--backend ray needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str) -> None:
    """A ``HOST:PORT`` address must accept a TCP connection within CONNECT_TIMEOUT_S."""
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"--ray-address must be HOST:PORT of a Ray head, 'auto' or empty, not {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise BackendError(f"no Ray cluster answers at {address!r} ({exc.strerror or exc}); start one with "
                           "'ray start --head' or leave --ray-address empty for a local Ray") from None


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, connected for the block: a local Ray (started and stopped here), ``auto`` or an address.

    If this process already has Ray running (a test, a notebook), it is used and left running.
    """
    ray = import_ray()
    address = (address or "").strip()
    if address and address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    # workers import ese from where this process does (a worktree or an uninstalled checkout)
    import ese

    src = os.path.dirname(os.path.dirname(os.path.abspath(ese.__file__)))
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "on this machine" if address == "auto" else f"at {address!r}" if address else "here"
        raise BackendError(f"cannot start or join Ray {where}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def map_points(fn: Callable[[Any, Any], Any], shared: Any, points: Sequence[Any], *,
               backend: str = "local", address: str | None = None,
               progress: Callable[[], None] | None = None) -> list[Any]:
    """``[fn(shared, p) for p in points]``, here or as one Ray task per point (same order).

    ``fn`` must be a module-level function (Ray ships it by reference to its module).
    ``progress`` is called once per finished point.
    """
    if check_backend(backend) == "local":
        out = []
        for p in points:
            out.append(fn(shared, p))
            if progress:
                progress()
        return out
    with ray_session(address) as ray:
        ref = ray.put(shared)  # once, whatever the number of points
        task = ray.remote(num_cpus=1)(_call)
        pending = {task.remote(fn, ref, p): k for k, p in enumerate(points)}
        results: list[Any] = [None] * len(points)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for d in done:
                results[pending.pop(d)] = _unwrap(ray, d)
                if progress:
                    progress()
        return results


def _call(fn: Callable[[Any, Any], Any], shared: Any, point: Any) -> Any:
    """Runs in a Ray worker: project errors come back as values, so they keep their one line."""
    try:
        return ("ok", fn(shared, point))
    except EseError as exc:
        return ("error", exc)


def _unwrap(ray, ref) -> Any:
    kind, value = ray.get(ref)
    if kind == "error":
        raise value
    return value
