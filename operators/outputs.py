"""Side outputs of the learner, named once so the job wiring and the operators agree."""

from pyflink.common import Types
from pyflink.datastream import OutputTag

__all__ = ["DEAD_LETTERS", "METRICS", "MODEL_SNAPSHOTS", "METRIC_UPDATES", "LIFECYCLE_EVENTS", "ALL_KEYS"]

DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())
METRICS = OutputTag("metrics", Types.STRING())
MODEL_SNAPSHOTS = OutputTag("model-snapshots", Types.STRING())
LIFECYCLE_EVENTS = OutputTag("lifecycle-events", Types.STRING())  # promotions and drifts (``--events``)
# Row(ALL_KEYS or a model's name, (y, value the metric is updated with)), keyed in Java for the all-keys metrics
METRIC_UPDATES = OutputTag("metric-updates", Types.ROW([Types.STRING(), Types.PICKLED_BYTE_ARRAY()]))
ALL_KEYS = "__all__"  # the one key of the all-keys metric
