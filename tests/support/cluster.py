"""A local Flink standalone cluster for tests, and waiting on what its jobs have committed."""

import contextlib
import time

from jobs.local.cluster import cluster_processes, rest_get, start_cluster, stop_cluster
from jobs.local.processes import free_ports

__all__ = ["local_cluster", "wait_until", "job_state", "learner_taskmanagers"]


@contextlib.contextmanager
def local_cluster(home, taskmanagers: int = 3, slots: int = 1):
    """``riverflink cluster start`` on free ports; yields (REST HOST:PORT, its processes); stops it by pid."""
    port, rpc_port = free_ports(2)
    processes = start_cluster(taskmanagers, slots, port, rpc_port, home)
    try:
        yield f"127.0.0.1:{port}", processes
    finally:
        stop_cluster(port, home)
        assert cluster_processes(home) == []


def wait_until(condition, timeout: float, what: str, poll: float = 1.0):
    """Poll ``condition()`` until it returns something truthy; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(poll)


def _port(jobmanager: str) -> int:
    return int(jobmanager.rpartition(":")[2])


def job_state(jobmanager: str, job_id: str) -> str:
    return rest_get(_port(jobmanager), f"/jobs/{job_id}")["state"]


def _vertex(vertices: list[dict], operator: str) -> dict:
    """The job vertex that runs ``operator`` (by name), alone or chained (``a -> b``)."""
    return next(v for v in vertices if operator in v["name"].split(" -> "))


def learner_taskmanagers(jobmanager: str, job_id: str, operator: str = "learn") -> set[str]:
    """Resource ids (tm-1, ...) of the TaskManagers running the subtasks of the learner (or ``operator``) right now."""
    port = _port(jobmanager)
    vertices = rest_get(port, f"/jobs/{job_id}")["vertices"]
    learner = _vertex(vertices, operator)
    placed = rest_get(port, f"/jobs/{job_id}/vertices/{learner['id']}/taskmanagers")["taskmanagers"]
    return {tm["taskmanager-id"] for tm in placed}


def learner_metric(jobmanager: str, job_id: str, name: str) -> int | None:
    """A learner metric (``keys_live``, ``events_learned``, ...) summed over its subtasks; None until reported.

    The JobManager fetches metrics from the TaskManagers every few seconds: wait for a value, don't expect it.
    """
    port = _port(jobmanager)
    vertices = rest_get(port, f"/jobs/{job_id}")["vertices"]
    learner = _vertex(vertices, "learn")
    answer = rest_get(port, f"/jobs/{job_id}/vertices/{learner['id']}/subtasks/metrics?get=learn.{name}&agg=sum")
    return int(answer[0]["sum"]) if answer else None
