"""Bandit streams and their yardstick: per-key river policies in a plain loop that follows SPEC §7.

The loop is written without riverflink code, the way a user would keep a dict
of river policies beside a stream, so agreeing with it means something.
"""

import dataclasses
import json
import pathlib
import random
import zlib

from river import bandit, proba, stats

ARMS = ["a", "b", "c"]

# Policies for the tests, as --model specs: one draws at random (its seed matters), one is contextual.
epsilon_greedy = bandit.EpsilonGreedy(epsilon=0.3, seed=42)
lin_ucb = bandit.LinUCBDisjoint(alpha=0.5, seed=7)
thompson = bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=3)  # 0/1 rewards: a Beta per arm
EPSILON_GREEDY = f"{pathlib.Path(__file__)}:epsilon_greedy"
LIN_UCB = f"{pathlib.Path(__file__)}:lin_ucb"
random_policy = bandit.RandomPolicy(seed=11)


class Fussy(bandit.EpsilonGreedy):
    """An epsilon-greedy policy that raises, after drawing, when offered an arm named ``boom``: a failing policy."""

    def _pull(self, arm_ids):
        arm = super()._pull(arm_ids)  # the random draws are made: a failure must not keep them
        if "boom" in arm_ids:
            raise ValueError("boom is no arm I pull")
        return arm


fussy = Fussy(epsilon=0.5, seed=8)
THOMPSON = f"{pathlib.Path(__file__)}:thompson"
RANDOM = f"{pathlib.Path(__file__)}:random_policy"
FUSSY = f"{pathlib.Path(__file__)}:fussy"


def bandit_stream(n_keys: int = 6, n_decisions: int = 600, contextual: bool = False, seed: int = 1) -> list[str]:
    """Decisions, their rewards 1 to 30 events later, logged interactions and bad lines, as event lines.

    A third of the decisions name no ``arms`` (the job's ``--arms`` supplies
    them), a fifth of the rest are logged interactions (``arm`` and ``y``);
    some rewards never come. The rewards depend on the key and the decision,
    not on the arm the policy will pull: the file is written before the job runs.
    """
    rng = random.Random(seed)
    keys = [f"user-{i}" for i in range(n_keys)]
    lines: list[tuple[int, str]] = []  # (position, line): rewards are placed later, then everything is sorted
    for i in range(n_decisions):
        key, event_id = rng.choice(keys), f"d{i}"
        decision = {"key": key, "id": event_id, "ts": 1_700_000_000 + i}
        if contextual:
            decision["x"] = {"f1": round(rng.uniform(-1, 1), 3), "f2": round(rng.uniform(-1, 1), 3)}
        if i % 3:
            decision["arms"] = ARMS if i % 7 else ARMS[:2]
        reward = float(rng.random() < 0.2 + 0.1 * keys.index(key))
        if "arms" in decision and i % 5 == 0:
            decision.update(arm=rng.choice(decision["arms"]), y=reward)  # a logged interaction
        elif i % 11:
            lines.append((2 * i + 1 + 2 * rng.randint(1, 30), json.dumps({"key": key, "id": event_id, "y": reward})))
        lines.append((2 * i, json.dumps(decision)))
    lines.sort(key=lambda pair: pair[0])
    bad = [
        '{"key": "user-0", "id": "bad-1", "arms": ["a", "a"]}',  # invalid_arms
        '{"key": "user-1", "id": "bad-2", "arms": ["a", true]}',  # invalid_arms
        '{"key": "user-2", "id": "bad-3", "arms": ["a", "b"], "arm": "z", "y": 1.0}',  # invalid_arm
        '{"key": "user-3", "id": "d1", "y": "good"}',  # invalid_target: a reward is a number
        '{"key": "user-4", "id": "never-decided", "y": 1.0}',  # unknown_id
    ]
    result = [line for _, line in lines]
    for number, line in enumerate(bad):
        result.insert(37 * (number + 1), line)
    return result


@dataclasses.dataclass
class PolicyResult:
    decisions: list = dataclasses.field(default_factory=list)  # (id, arm, updates before it)
    mean_reward: object = dataclasses.field(default_factory=stats.Mean)
    policy: object = None
    updates: int = 0


def policy_loop(lines: list[str], template, default_arms: list | None = None) -> tuple[dict, object]:
    """Every key's policy, decisions and mean reward, and the mean reward over all keys, by SPEC §7.

    Lines a job would dead-letter are skipped here the simple way: they do not parse as what they claim.
    """
    contextual = isinstance(template, bandit.base.ContextualPolicy)
    results: dict[str, PolicyResult] = {}
    pending: dict[tuple, tuple] = {}
    overall = stats.Mean()

    def update(result, arm, x, reward):
        if contextual:
            result.policy.update(arm, x, reward)
        else:
            result.policy.update(arm, reward)
        result.updates += 1
        result.mean_reward.update(reward)
        overall.update(reward)

    for line in lines:
        event = json.loads(line)
        key = event["key"]
        arms, arm, y, x = event.get("arms"), event.get("arm"), event.get("y"), event.get("x") or {}
        if isinstance(y, str) or (arms is not None and (len(set(map(str, arms))) != len(arms)
                                                        or any(isinstance(a, bool) for a in arms))):
            continue
        if arm is not None and arm not in arms:
            continue
        if y is not None and arm is None:  # a reward, for a decision made before, or for nothing
            if (key, event["id"]) in pending:
                pulled, context = pending.pop((key, event["id"]))
                update(results[key], pulled, context, y)
            continue
        if key not in results:
            seed = None if template.seed is None else (template.seed + zlib.crc32(key.encode())) % 2**32
            results[key] = PolicyResult(policy=template.clone() if seed is None else template.clone({"seed": seed}))
        result = results[key]
        arms = arms or default_arms
        pulled = result.policy.pull(arms, context=x) if contextual else result.policy.pull(arms)
        result.decisions.append((event["id"], pulled, result.updates))
        if arm is None:
            pending[(key, event["id"])] = (pulled, x)
        elif pulled == arm:  # river's replay: learn only where the policy chose what was logged
            update(result, pulled, x, y)
    return results, overall


def policy_state(value):
    """Everything a policy holds, as plain values: equal when it learned the same and its random draws stand alike.

    (Pickles of equal policies can differ in bytes: pickle shares equal objects by identity.)
    """
    if isinstance(value, random.Random):
        return value.getstate()
    if isinstance(value, dict):
        return {name: policy_state(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [policy_state(item) for item in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return type(value).__name__, policy_state(vars(value))
    return value
