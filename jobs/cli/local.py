"""``riverflink cluster`` and ``riverflink kafka``: start and stop the local services of ``jobs.local``."""

__all__ = ["command"]


def command(args) -> int:
    """Carry out ``riverflink cluster start|stop`` or ``riverflink kafka start|stop``; returns the exit status.

    Parameters
    ----------
    args
        The parsed ``cluster`` or ``kafka`` arguments.
    """
    if args.command == "cluster":
        return _cluster(args)
    return _kafka(args)


def _cluster(args) -> int:
    from jobs.local.cluster import start_cluster, stop_cluster

    if args.action == "start":
        processes = start_cluster(args.taskmanagers, args.slots, args.port, args.rpc_port, args.dir, args.warm,
                                  prometheus_ports=args.prometheus_port)
        pids = ", ".join(f"{p.name} {p.pid}" for p in processes)
        print(f"Flink cluster running: REST and web UI on http://127.0.0.1:{args.port} ({pids})")
        if args.prometheus_port is not None:
            print(f"Flink metrics for Prometheus: each JVM on the first free port of {args.prometheus_port}")
    elif stop_cluster(args.port, args.dir):
        print(f"Flink cluster on 127.0.0.1:{args.port} stopped")
    else:
        print(f"no Flink cluster started by riverflink is running on 127.0.0.1:{args.port}")
    return 0


def _kafka(args) -> int:
    from jobs.local.kafka import start_broker, stop_broker

    if args.action == "start":
        pid = start_broker(args.port, args.controller_port, args.data_dir)
        print(f"Kafka broker running on 127.0.0.1:{args.port} (pid {pid})")
    elif stop_broker(args.port, args.data_dir):
        print(f"Kafka broker on 127.0.0.1:{args.port} stopped")
    else:
        print(f"no Kafka broker started by riverflink is running on 127.0.0.1:{args.port}")
    return 0
