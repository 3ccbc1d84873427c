"""Bandit policies per key (SPEC §7) against a plain river loop: the learning step alone, then the job.

What it proves: every decision's arm and ``model_version``, every key's mean
reward, the mean reward over all keys and every final policy equal
``tests.support.bandits.policy_loop``, contextual or not, with rewards 1 to 30
events after their decision and logged interactions replayed; bad lines are
dead letters that change no policy; replaying what the key store logged
rebuilds each policy to the last bit; the job agrees at parallelism 2 on both
state backends.
"""

import collections
import pickle
import random

import pytest

from operators.bandits import MeanReward, key_seed, policy_for_key
from operators.dead_letters import DeadLetter
from operators.events import decode_event
from operators.learning_step import LearningStep
from operators.model_kinds import Kind, kind_of, make_metric
from state.exceptions import SettingsError
from tests.support import bandits
from tests.support.bandits import ARMS, EPSILON_GREEDY, LIN_UCB, bandit_stream, policy_loop
from tests.support.flink import run

BAD_REASONS = collections.Counter({"invalid_arms": 2, "invalid_arm": 1, "invalid_target": 1, "unknown_id": 1})
POLICIES = {"epsilon-greedy": (EPSILON_GREEDY, bandits.epsilon_greedy, False),
            "lin-ucb": (LIN_UCB, bandits.lin_ucb, True)}


def _state_of(value):
    """Everything a policy holds, as plain values: equal when it learned the same and its random draws stand alike.

    (Pickles of equal policies can differ in bytes: pickle shares equal objects by identity.)
    """
    if isinstance(value, random.Random):
        return value.getstate()
    if isinstance(value, dict):
        return {name: _state_of(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_state_of(item) for item in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return type(value).__name__, _state_of(vars(value))
    return value


@pytest.mark.unit
def test_a_policy_is_the_sixth_kind_judged_by_mean_reward_and_seeded_per_key():
    template = bandits.epsilon_greedy
    assert kind_of(template) is Kind.BANDIT and type(make_metric(Kind.BANDIT, None, template)) is MeanReward
    with pytest.raises(SettingsError, match="judged by MeanReward"):
        make_metric(Kind.BANDIT, "Accuracy", template)
    seeds = {key: key_seed(template, key) for key in ("user-0", "user-1")}
    assert seeds["user-0"] != seeds["user-1"] and policy_for_key(template, "user-0").seed == seeds["user-0"]


@pytest.mark.unit
@pytest.mark.parametrize("name", POLICIES)
def test_the_learning_step_decides_and_learns_as_a_plain_river_loop(name):
    _, template, contextual = POLICIES[name]
    lines = bandit_stream(contextual=contextual)
    metric = make_metric(Kind.BANDIT, None, template)
    step = LearningStep(Kind.BANDIT, template.clone, metric.clone, arms=tuple(ARMS))
    fresh = pickle.dumps(step.new_state())
    states, ids, logged = {}, collections.defaultdict(dict), collections.defaultdict(list)
    decisions, reasons = collections.defaultdict(list), collections.Counter()
    overall = MeanReward()
    for now_ms, line in enumerate(lines):
        event = decode_event(line, decisions=True)
        if isinstance(event, DeadLetter):
            reasons[event.reason] += 1
            continue
        state = states.setdefault(event.key, pickle.loads(fresh))
        outcome = step.process(state, ids[event.key], event, now_ms)
        if outcome.dead_letter is not None:
            reasons[outcome.dead_letter.reason] += 1
        if outcome.prediction is not None:
            decisions[event.key].append((event.id, outcome.prediction.prediction, outcome.prediction.model_version))
        if outcome.metric_update is not None:
            overall.update(*outcome.metric_update)
        if outcome.replay is not None:
            logged[event.key].append(outcome.replay)
    expected, expected_overall = policy_loop(lines, template, default_arms=ARMS)
    assert reasons == BAD_REASONS
    assert set(states) == set(expected)
    for key, result in expected.items():
        assert decisions[key] == result.decisions, key
        assert states[key].metric.get() == result.mean_reward.get() and states[key].model_version == result.updates
        assert _state_of(states[key].model) == _state_of(result.policy), key
        replayed = pickle.loads(fresh)  # what the key store does with a key's logged entries
        for entry in logged[key]:
            step.replay(replayed, entry)
        assert _state_of(replayed.model) == _state_of(result.policy), key
    assert overall.get() == expected_overall.get()
    assert len({arm for result in expected.values() for _, arm, _ in result.decisions}) == 3  # it explored


@pytest.mark.minicluster
@pytest.mark.parametrize("state_backend", ["hashmap", "rocksdb"])
@pytest.mark.parametrize("name", POLICIES)
def test_the_job_decides_and_learns_as_a_plain_river_loop_at_parallelism_2(tmp_path, name, state_backend):
    spec, template, contextual = POLICIES[name]
    lines = bandit_stream(contextual=contextual)
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    outputs = run(tmp_path, spec, [tmp_path / "events.jsonl"], parallelism=2, state_backend=state_backend,
                  arms=tuple(ARMS))
    expected, expected_overall = policy_loop(lines, template, default_arms=ARMS)
    assert {(p["key"], p["id"]): (p["prediction"], p["model_version"]) for p in outputs.predictions} == {
        (key, event_id): (arm, version) for key, result in expected.items() for event_id, arm, version in result.decisions}
    assert collections.Counter(letter["reason"] for letter in outputs.dead_letters) == BAD_REASONS
    final = outputs.final_metrics()
    # All keys' rewards reach one operator interleaved as the two subtasks sent them: a mean in another order.
    assert final[None]["value"] == pytest.approx(expected_overall.get(), rel=1e-9)
    assert final[None]["metric"] == "MeanReward" and final[None]["n"] == sum(r.updates for r in expected.values())
    assert {key: (record["value"], record["n"]) for key, record in final.items() if key is not None} == {
        key: (result.mean_reward.get(), result.updates) for key, result in expected.items() if result.updates}
    assert {key: _state_of(policy) for key, policy in outputs.models.items()} == {
        key: _state_of(result.policy) for key, result in expected.items()}
