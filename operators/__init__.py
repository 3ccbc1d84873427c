"""Keyed stateful operators: Flink adapters around Flink-free learning logic."""
