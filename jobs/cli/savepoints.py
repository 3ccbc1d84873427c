"""Savepoints of a job running on a Flink cluster, through the JobManager's REST API.

``riverflink savepoint JOB_ID`` keeps the job running; ``riverflink stop
JOB_ID`` takes a savepoint and stops the job in one step (sources stop first,
so no event is processed after the savepoint). ``riverflink run
--from-savepoint PATH`` resumes from either, at any parallelism: each key's
model travels with its key group.
"""

import json
import logging
import time
import urllib.error
import urllib.request

from state.exceptions import RiverflinkError

__all__ = ["command", "trigger_savepoint", "stop_with_savepoint"]

logger = logging.getLogger(__name__)

TIMEOUT_S = 600


def _request(jobmanager: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{jobmanager}{path}", data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        errors = json.loads(exc.read() or b"{}").get("errors", [])
        reason = errors[0].splitlines()[0] if errors else exc.reason
        raise RiverflinkError(f"the JobManager at {jobmanager} refused {path}: {reason}") from exc
    except urllib.error.URLError as exc:
        raise RiverflinkError(f"no Flink JobManager answers at {jobmanager}: {exc.reason}") from exc


def _await(jobmanager: str, job_id: str, request_id: str) -> str:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        answer = _request(jobmanager, f"/jobs/{job_id}/savepoints/{request_id}")
        if answer["status"]["id"] == "COMPLETED":
            operation = answer["operation"]
            if "failure-cause" in operation:
                cause = operation["failure-cause"].get("stack-trace", "").splitlines()
                raise RiverflinkError(f"the savepoint of job {job_id} failed: {cause[0] if cause else 'unknown cause'}")
            return operation["location"]
        time.sleep(0.5)
    raise RiverflinkError(f"the savepoint of job {job_id} did not complete within {TIMEOUT_S} s")


def command(args) -> int:
    """Carry out ``riverflink savepoint`` or ``riverflink stop``, printing the savepoint's location.

    Returns the exit status.

    Parameters
    ----------
    args
        The parsed ``savepoint`` or ``stop`` arguments.
    """
    if args.command == "stop":
        print(stop_with_savepoint(args.jobmanager, args.job_id, args.savepoint_dir, args.drain))
    else:
        print(trigger_savepoint(args.jobmanager, args.job_id, args.savepoint_dir))
    return 0


def trigger_savepoint(jobmanager: str, job_id: str, target: str | None = None) -> str:
    """Take a savepoint of a running job; returns its location.

    Parameters
    ----------
    jobmanager
        The cluster's REST address, ``HOST:PORT``.
    job_id
        The running job's id.
    target
        The directory to write it under; None: the cluster's ``execution.checkpointing.savepoint-dir``.
    """
    answer = _request(jobmanager, f"/jobs/{job_id}/savepoints",
                      {"target-directory": target, "cancel-job": False, "formatType": "CANONICAL"})
    location = _await(jobmanager, job_id, answer["request-id"])
    logger.info("savepoint of %s at %s", job_id, location)
    return location


def stop_with_savepoint(jobmanager: str, job_id: str, target: str | None = None, drain: bool = False) -> str:
    """Stop a job with a savepoint (no event is processed after it); returns the savepoint's location.

    Parameters
    ----------
    jobmanager
        The cluster's REST address, ``HOST:PORT``.
    job_id
        The running job's id.
    target
        The directory to write it under; None: the cluster's ``execution.checkpointing.savepoint-dir``.
    drain
        End the job as if its input had ended: every key reports its final metric and model snapshot before
        the savepoint. Resume from a drained savepoint only to replay, not to go on.
    """
    answer = _request(jobmanager, f"/jobs/{job_id}/stop",
                      {"targetDirectory": target, "drain": drain, "formatType": "CANONICAL"})
    location = _await(jobmanager, job_id, answer["request-id"])
    logger.info("job %s stopped with a savepoint at %s", job_id, location)
    return location
