"""``riverflink serve``: the job learns, servers follow its model snapshots and answer over HTTP.

The job stays the only writer of models, exactly-once; any number of these
stateless processes read what it writes to ``--models-out`` (a directory or a
compacted Kafka topic) and answer ``POST /predict`` in milliseconds. See
``docs/serving.md``.

- ``models``: every key's latest snapshot as bytes, an LRU of restored models.
- ``followers``: threads that read a destination (models; metrics, events
  and dead letters for the dashboard).
- ``app``: the ASGI application; ``prometheus``: its ``/metrics``;
  ``forwarding``: ``POST /events`` into the job's input topic;
  ``dashboard``: the page at ``/``.
"""
