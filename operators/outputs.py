"""Side outputs of the learner, named once so the job wiring and the operators agree."""

from pyflink.common import Types
from pyflink.datastream import OutputTag

__all__ = ["DEAD_LETTERS", "METRICS", "MODEL_SNAPSHOTS", "METRIC_UPDATES", "ALL_KEYS"]

DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())
METRICS = OutputTag("metrics", Types.STRING())
MODEL_SNAPSHOTS = OutputTag("model-snapshots", Types.STRING())
# Row(ALL_KEYS, (y, value the metric is updated with)), keyed in Java for the all-keys metric
METRIC_UPDATES = OutputTag("metric-updates", Types.ROW([Types.STRING(), Types.PICKLED_BYTE_ARRAY()]))
ALL_KEYS = "__all__"  # the one key of the all-keys metric
