"""Side outputs of the learner, named once so the job wiring and the operators agree."""

from pyflink.common import Types
from pyflink.datastream import OutputTag

__all__ = ["DEAD_LETTERS", "METRICS", "MODEL_SNAPSHOTS", "METRIC_UPDATES"]

DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())
METRICS = OutputTag("metrics", Types.STRING())
MODEL_SNAPSHOTS = OutputTag("model-snapshots", Types.STRING())
# (y, value the metric is updated with), for the all-keys metric
METRIC_UPDATES = OutputTag("metric-updates", Types.PICKLED_BYTE_ARRAY())
