"""What a job needs to run on Flink: its environment and options, the jars, and the Python workers' boot."""
