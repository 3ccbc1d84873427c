"""Where the Flink distribution that the apache-flink wheel ships lives (its bin, conf, lib, opt and log folders)."""

import importlib.util
import pathlib

__all__ = ["FLINK_HOME"]

FLINK_HOME = pathlib.Path(importlib.util.find_spec("pyflink").origin).parent
