"""Bandit policies per key in a closed loop through Kafka, against one global policy and random choices; and decisions/s.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.bandits
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.bandits --users 200 --decisions 40000 --rate 500

**Closed loop.** ``--users`` simulated users each take one of ``--arms``
offers with a probability of their own: a best arm, different per user, at
``--best``, the others drawn between 0.05 and 0.25. The benchmark starts its
own Kafka broker and a streaming ``riverflink run --model MODEL --arms ...``
that reads decisions and rewards from one topic and writes its decisions
(prediction records) to another, exactly-once. A producer asks for
``--decisions`` decisions at ``--rate`` per second, users in a fixed random
order; the simulator reads each committed decision, draws the user's reward
for the arm chosen and sends it back, keyed as the decision was. Twice, on
the same users, order and draws (decision i is rewarded when a uniform u_i
falls under the user's probability for the arm):

- **per key**: each decision keyed by its user, so each user has a policy;
- **global**: every decision keyed ``everyone``, one policy for all users.

Beside them, over the same u_i: **random**, an arm drawn uniformly, and
**oracle**, each user's best arm always. The mean reward is reported over all
decisions and over the second half (once policies have learned). A reward
reaches the job a checkpoint after its decision (the decisions topic is
read committed), so learning lags by that much.

**Decisions per second.** The same policy over a file of ``--file-decisions``
decisions of ``--users`` users, each rewarded 10 lines later, through the job
on the mini-cluster at ``--parallelism`` (its net run time, as Flink reports
it: from the job's start to its end, the client JVM's start left out), and
through a bare river loop (a dict of policies, ``pull`` and ``update`` per
line); both include reading and parsing the lines. The machine is shared and
noisy: compare ratios.
"""

import argparse
import json
import pathlib
import random
import statistics
import tempfile
import threading
import time
import zlib

from kafka import KafkaConsumer, KafkaProducer

from benchmarks.streaming import WARM_UP_S, create_topics, produce_steadily, streaming_job
from jobs.learn_job import run_job
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports
from jobs.model_spec import load_template
from jobs.settings import OutputSettings, Settings
from state.destinations import committed_files

MODEL = "examples/bandit.py:model"


class Users:
    """Who asks for decision i, the draw u_i that decides its reward, and each user's probability per arm."""

    def __init__(self, n_users: int, arms: list[str], decisions: int, best: float, seed: int = 11):
        rng = random.Random(seed)
        self.arms = arms
        self.probability = {}
        for number in range(n_users):
            user = f"user-{number}"
            favourite = rng.choice(arms)
            self.probability[user] = {arm: best if arm == favourite else rng.uniform(0.05, 0.25) for arm in arms}
        users = sorted(self.probability)
        self.schedule = [(rng.choice(users), rng.random()) for _ in range(decisions)]

    def reward(self, decision: int, arm: str) -> float:
        user, draw = self.schedule[decision]
        return float(draw < self.probability[user][arm])

    def random_rewards(self, seed: int = 5) -> list[float]:
        rng = random.Random(seed)
        return [self.reward(i, rng.choice(self.arms)) for i in range(len(self.schedule))]

    def oracle_rewards(self) -> list[float]:
        return [self.reward(i, max(self.arms, key=self.probability[user].get))
                for i, (user, _) in enumerate(self.schedule)]


def closed_loop(bootstrap: str, users: Users, mode: str, args, workdir: pathlib.Path) -> tuple[list[float], list]:
    """Run the loop once; returns each decision's reward, in decision order, and the decisions' round trips (s)."""
    inbox, decided = f"{mode}-events", f"{mode}-decisions"
    create_topics(bootstrap, inbox, decided)
    options = ["--arms", ",".join(users.arms), "--kafka-bootstrap", bootstrap, "--kafka-topic", inbox,
               "--predictions", f"kafka://{decided}", "--checkpoint-interval", str(args.checkpoint_interval),
               "--parallelism", str(args.parallelism)]
    consumer = KafkaConsumer(decided, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             isolation_level="read_committed", enable_auto_commit=False)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    rewards: list[float | None] = [None] * len(users.schedule)
    sent_at: dict[int, float] = {}
    trips = []
    with streaming_job(options, workdir / f"{mode}.log", model=args.model) as job:
        produce_steadily(bootstrap, inbox, [{"key": "warm-up", "id": "warm-up"}], 1)
        deadline = time.monotonic() + WARM_UP_S
        while not any(consumer.poll(timeout_ms=1000).values()):
            if job.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the job did not start; see {workdir / f'{mode}.log'}")
        decisions = [{"key": user if mode == "per-key" else "everyone", "id": str(i)}
                     for i, (user, _) in enumerate(users.schedule)]
        asking = threading.Thread(target=produce_steadily, args=(bootstrap, inbox, decisions, args.rate),
                                  kwargs={"on_send": lambda event: sent_at.__setitem__(int(event["id"]), time.time())})
        asking.start()
        answered, give_up = 0, time.monotonic() + len(decisions) / args.rate + 120
        while answered < len(decisions) and time.monotonic() < give_up:
            for batch in consumer.poll(timeout_ms=500).values():
                now = time.time()
                for message in batch:
                    record = json.loads(message.value)
                    if record["id"] == "warm-up":
                        continue
                    decision = int(record["id"])
                    rewards[decision] = reward = users.reward(decision, record["prediction"])
                    trips.append(now - sent_at[decision])
                    producer.send(inbox, key=record["key"].encode(),
                                  value=json.dumps({"key": record["key"], "id": record["id"], "y": reward}).encode())
                    answered += 1
            producer.flush()
        asking.join()
    consumer.close()
    producer.close()
    if answered < len(decisions):
        raise SystemExit(f"{mode}: {len(decisions) - answered} decisions never came; see {workdir / f'{mode}.log'}")
    return rewards, trips


def decision_file(path: pathlib.Path, n_users: int, decisions: int, arms: list[str], seed: int = 3) -> int:
    """Decisions of ``n_users`` users, each rewarded 10 lines later; returns the number of lines."""
    rng = random.Random(seed)
    lines, pending = [], []
    for i in range(decisions):
        user = f"user-{rng.randrange(n_users)}"
        lines.append(json.dumps({"key": user, "id": str(i), "arms": arms}))
        pending.append((user, str(i)))
        if len(pending) > 10:
            user, event_id = pending.pop(0)
            lines.append(json.dumps({"key": user, "id": event_id, "y": float(rng.random() < 0.3)}))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def bare_loop(path: pathlib.Path, spec: str) -> int:
    """A dict of per-user policies over the file, seeded per key as the job seeds them; returns decisions made."""
    template, _ = load_template(spec)
    policies, pulled, decisions = {}, {}, 0
    with path.open() as lines:
        for line in lines:
            event = json.loads(line)
            key = event["key"]
            policy = policies.get(key)
            if policy is None:
                seed = (template.seed + zlib.crc32(key.encode())) % 2**32
                policy = policies[key] = template.clone({"seed": seed})
            if "y" in event:
                policy.update(pulled.pop((key, event["id"])), event["y"])
            else:
                pulled[(key, event["id"])] = policy.pull(event["arms"])
                decisions += 1
    return decisions


def throughput(args, workdir: pathlib.Path, arms: list[str]) -> tuple[float, float, int]:
    """Decisions per second of the bare loop and of the job over the same file."""
    data = workdir / "decisions.jsonl"
    decision_file(data, args.users, args.file_decisions, arms)
    started = time.perf_counter()
    decisions = bare_loop(data, args.model)
    bare = decisions / (time.perf_counter() - started)
    settings = Settings(model=args.model, inputs=(str(data),), parallelism=args.parallelism,
                        outputs=OutputSettings(predictions=str(workdir / "file-decisions")))
    job = decisions / (run_job(settings).get_net_runtime() / 1000)
    written = sum(sum(1 for _ in path.open()) for path in committed_files(settings.outputs.predictions))
    if written != decisions:
        raise SystemExit(f"the job wrote {written} decisions for {decisions}")
    return bare, job, decisions


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--best", type=float, default=0.5, help="each user's reward probability of its best arm")
    parser.add_argument("--decisions", type=int, default=30_000, help="decisions of the closed loop")
    parser.add_argument("--rate", type=float, default=400, help="decisions asked per second in the closed loop")
    parser.add_argument("--checkpoint-interval", type=float, default=0.5)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--file-decisions", type=int, default=200_000, help="decisions of the throughput run")
    args = parser.parse_args(argv)
    arms = [f"offer-{number}" for number in range(args.arms)]
    users = Users(args.users, arms, args.decisions, args.best)
    with tempfile.TemporaryDirectory(prefix="riverflink-bandits-") as folder:
        workdir = pathlib.Path(folder)
        port, controller_port = free_ports(2)
        start_broker(port, controller_port, workdir / "broker")
        try:
            looped = {mode: closed_loop(f"127.0.0.1:{port}", users, mode, args, workdir)
                      for mode in ("per-key", "global")}
        finally:
            stop_broker(port, workdir / "broker")
        bare, job, decisions = throughput(args, workdir, arms)
    half = len(users.schedule) // 2
    rows = {"per-key policies": looped["per-key"][0], "one global policy": looped["global"][0],
            "random": users.random_rewards(), "oracle (best arm per user)": users.oracle_rewards()}
    print(f"closed loop through Kafka: {args.users} users, {args.arms} arms (best {args.best:g}, others 0.05-0.25), "
          f"{args.decisions:,} decisions at {args.rate:g}/s, {args.model}, parallelism {args.parallelism}, "
          f"checkpoints every {args.checkpoint_interval:g} s")
    print(f"  {'':28} {'cumulative':>10} {'mean':>7} {'second half':>12}")
    for name, rewards in rows.items():
        print(f"  {name:28} {sum(rewards):>10,.0f} {_mean(rewards):>7.4f} {_mean(rewards[half:]):>12.4f}")
    for mode, (_, trips) in looped.items():
        trips = sorted(trips)
        print(f"  {mode} decision round trip (asked -> committed decision read): p50 "
              f"{trips[len(trips) // 2] * 1000:.0f} ms, p99 {trips[int(len(trips) * 0.99)] * 1000:.0f} ms")
    print(f"decisions/s over {decisions:,} decisions of {args.users} users (each rewarded 10 lines later), "
          f"mini-cluster at parallelism {args.parallelism}:")
    print(f"  bare river loop {bare:,.0f}/s, riverflink {job:,.0f}/s, ratio {job / bare:.2f}")


if __name__ == "__main__":
    main()
