"""Local helper services for development, tests and benchmarks: a Flink standalone cluster and a Kafka broker."""
