"""The first job of a new local cluster, run before it is reported ready, so that users' first job starts fast.

In thread mode each TaskManager embeds one Python interpreter for its whole
life, and the first job to reach it pays for starting it and importing
PyFlink, river and riverflink; the cluster's JVMs run their first job's code
paths cold as well. On two TaskManagers that was 4.6 s of a first job's
5.2 s start-up, against 0.4 s for every later job. ``riverflink cluster
start`` pays it once, with a few events through the learner on every slot.
It also proves that the TaskManagers can run riverflink at all.
"""

import json
import logging
import pathlib
import tempfile

from jobs.learn_job import run_job
from jobs.runtime.jvm_errors import root_cause
from jobs.settings import OutputSettings, Settings
from state.exceptions import RiverflinkError

__all__ = ["warm_up", "WARM_UP_JOB_NAME"]

logger = logging.getLogger(__name__)

WARM_UP_JOB_NAME = "riverflink-warm-up"
WARM_UP_MODEL = "river.linear_model:LogisticRegression"
EVENTS_PER_SLOT = 8


def warm_up(jobmanager: str, slots: int, home: pathlib.Path) -> None:
    """Run the warm-up job on ``jobmanager`` at parallelism ``slots``, in a scratch folder under ``home``.

    Parameters
    ----------
    jobmanager
        The cluster's REST API, ``HOST:PORT``.
    slots
        Every slot of the cluster, so that every TaskManager runs the learner.
    home
        The cluster's folder: the scratch folder goes there, and the error names its logs.

    Raises
    ------
    RiverflinkError
        If the job fails: the cluster cannot run riverflink. The message holds the error's root cause.
    """
    try:
        _run_warm_up_job(jobmanager, slots, home)
    except Exception as exc:
        raise RiverflinkError(f"the cluster started but could not run its warm-up job ({root_cause(exc)}); "
                              f"see {home / 'log'}") from exc


def _run_warm_up_job(jobmanager: str, slots: int, home: pathlib.Path) -> None:
    with tempfile.TemporaryDirectory(prefix="warm-up-", dir=home) as scratch:
        events = pathlib.Path(scratch) / "events.jsonl"
        lines = (json.dumps({"key": f"warm-up-{i}", "x": {"x": float(i)}, "y": i % 2 == 0})
                 for i in range(EVENTS_PER_SLOT * slots))
        events.write_text("".join(line + "\n" for line in lines))
        logger.info("warming up the cluster on %s with a job on %d slots", jobmanager, slots)
        run_job(Settings(model=WARM_UP_MODEL, inputs=(str(events),), parallelism=slots, jobmanager=jobmanager,
                         job_name=WARM_UP_JOB_NAME, outputs=OutputSettings(predictions=str(pathlib.Path(scratch) / "out"))))
