"""Flink's own Prometheus reporter, for the job's metrics (``events_learned``, ``keys_live``, Flink's own).

The reporter is a plugin the ``apache-flink`` wheel ships under
``plugins/metrics-prometheus``. A cluster's JVMs load it from that folder
(``riverflink cluster start`` starts them from the same distribution), so
there two options turn it on. The embedded mini-cluster loads no plugins: it
finds reporters on its JVM's classpath only, so the client JVM of a run that
asks for one starts with the plugin's jar on it (``reporter_jars``). Each JVM
serves ``/metrics`` on the first free port of the range: the mini-cluster
needs one port, a local cluster one per JobManager and TaskManager. On a
cluster started elsewhere the reporter is that cluster's configuration, not
a job's.
"""

import pathlib

from jobs.runtime.jars import FLINK_HOME
from state.exceptions import SettingsError

__all__ = ["check_ports", "reporter_options", "client_jars", "FACTORY"]

REPORTER = "metrics.reporter.prom"
FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"


def check_ports(text: str, option: str = "--prometheus-port") -> str:
    """``PORT`` or ``PORT-PORT`` as Flink's reporter takes it, checked; raises SettingsError naming ``option``.

    Examples
    --------
    >>> check_ports("9249"), check_ports("9250-9259")
    ('9249', '9250-9259')
    >>> check_ports("9259-9250")
    Traceback (most recent call last):
    ...
    state.exceptions.SettingsError: --prometheus-port must be PORT or FIRST-LAST (ports 1 to 65535, FIRST <= LAST), not '9259-9250'
    """
    parts = text.split("-")
    valid = 1 <= len(parts) <= 2 and all(part.isdigit() and 1 <= int(part) <= 65535 for part in parts)
    if not valid or int(parts[0]) > int(parts[-1]):
        raise SettingsError(f"{option} must be PORT or FIRST-LAST (ports 1 to 65535, FIRST <= LAST), not {text!r}")
    return text


def reporter_options(ports: str) -> list[tuple[str, str]]:
    """The Flink options that turn the Prometheus reporter on, on ``ports`` (``PORT`` or ``FIRST-LAST``)."""
    return [(f"{REPORTER}.factory.class", FACTORY), (f"{REPORTER}.port", check_ports(ports))]


def client_jars(settings) -> list[pathlib.Path]:
    """Jars the client JVM of a run with ``settings`` needs on its own classpath: the mini-cluster's reporter."""
    if settings.prometheus_port is None or settings.jobmanager is not None:
        return []
    jars = sorted((FLINK_HOME / "plugins" / "metrics-prometheus").glob("flink-metrics-prometheus-*.jar"))
    if not jars:
        raise SettingsError(f"--prometheus-port: the installed Flink ({FLINK_HOME}) has no "
                            "plugins/metrics-prometheus/flink-metrics-prometheus-*.jar")
    return jars
