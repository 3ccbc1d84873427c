"""Bandit policies per key (SPEC §7) against a plain river loop and river's own replay.

What it proves: every decision's arm and ``model_version``, every key's mean
reward, the mean reward over all keys and every final policy equal
``tests.support.bandits.policy_loop``, contextual or not, with rewards 1 to 30
events after their decision and logged interactions replayed; bad lines are
dead letters that change no policy; replaying what the key store logged
rebuilds each policy to the last bit; the job agrees at parallelism 2 on both
state backends. ``evaluate`` on a log equals ``bandit.evaluate_offline`` per
key, for the model and for each challenger; a drift detector watches rewards;
``serve`` answers the arm a key's policy would pull, from a copy. The kill
test is in ``tests/test_cluster.py``.
"""

import collections
import copy
import importlib.util
import json
import pickle
import random

import pytest
from river import bandit, stats

from jobs.cli.evaluate import evaluate
from jobs.cli.metric_reports import final_metrics
from jobs.cli.parser import build_parser
from jobs.cli.produce import publish
from jobs.cli.serve import build_app
from jobs.learn_job import load_models
from jobs.model_spec import load_template
from jobs.settings import KafkaSettings, LifecycleSettings, OutputSettings, Settings, TuningSettings
from operators.bandits import MeanReward, key_seed, policy_for_key
from operators.dead_letters import DeadLetter
from operators.events import decode_event
from operators.learning_step import LearningStep
from operators.lifecycle import LifecyclePolicy, make_detector
from operators.model_kinds import Kind, kind_of, make_metric
from operators.records import model_snapshot_record, template_record
from state.destinations import read_records
from state.envelope import dump_state
from state.exceptions import SettingsError
from tests.support import bandits
from tests.support.bandits import ARMS, EPSILON_GREEDY, LIN_UCB, bandit_stream, policy_loop, policy_state
from tests.support.flink import run
from tests.support.kafka import new_topic
from tests.support.models import DATA, EXAMPLES
from tests.support.serving import serve_in_thread, until

BAD_REASONS = collections.Counter({"invalid_arms": 2, "invalid_arm": 1, "invalid_target": 1, "unknown_id": 1})
POLICIES = {"epsilon-greedy": (EPSILON_GREEDY, bandits.epsilon_greedy, False),
            "lin-ucb": (LIN_UCB, bandits.lin_ucb, True)}


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
        assert policy_state(states[key].model) == policy_state(result.policy), key
        replayed = pickle.loads(fresh)  # what the key store does with a key's logged entries
        for entry in logged[key]:
            step.replay(replayed, entry)
        assert policy_state(replayed.model) == policy_state(result.policy), key
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
    assert {key: policy_state(policy) for key, policy in outputs.models.items()} == {
        key: policy_state(result.policy) for key, result in expected.items()}


@pytest.mark.unit
def test_serve_answers_the_arm_a_keys_policy_would_pull_now_without_changing_it(tmp_path):
    template = bandits.epsilon_greedy
    policy = policy_for_key(template, "user-0")
    for step in range(40):
        policy.update(policy.pull(ARMS), float(step % 3 == 0))
    (tmp_path / "part-0").write_text(template_record(dump_state(template.clone()), 1_000) + "\n"
                                     + model_snapshot_record("user-0", 40, dump_state(policy), 2_000) + "\n")
    app = build_app(build_parser().parse_args(["serve", "--models", str(tmp_path)]))
    app.follower.start()
    with serve_in_thread(app) as client:
        assert until(client.healthy)
        expected = [copy.deepcopy(policy).pull(ARMS) for _ in range(3)]
        answers = [client.predict({"key": "user-0", "arms": ARMS}) for _ in range(3)]
        assert [(status, answer["prediction"], answer["model_version"]) for status, answer in answers] == [
            (200, arm, 40) for arm in expected]  # the same arm each time: a copy pulls
        status, unseen = client.predict({"key": "user-9", "arms": ARMS})
        assert (status, unseen["prediction"], unseen["model_version"]) == (
            200, policy_for_key(template, "user-9").pull(ARMS), 0)
        for request, reason in (({"key": "user-0"}, "missing_arms"), ({"key": "user-0", "arms": []}, "invalid_arms"),
                                ({"key": "user-0", "arms": ["a", None]}, "invalid_arms")):
            status, answer = client.predict(request)
            assert (status, answer["error"]) == (400, reason), request
        status, described = client.request("GET", "/models/user-0")
        assert status == 200 and described["kind"] == "bandit" and described["model"].startswith("EpsilonGreedy(")


def logged_interactions(n_keys: int = 5, n_events: int = 1500, contextual: bool = False, seed: int = 3) -> list[str]:
    """A log of a uniform random logging policy: each key's best arm differs, rewards are Bernoulli."""
    rng = random.Random(seed)
    best = {f"user-{i}": ARMS[i % len(ARMS)] for i in range(n_keys)}
    lines = []
    for i in range(n_events):
        key = rng.choice(sorted(best))
        arm = rng.choice(ARMS)
        event = {"key": key, "id": f"l{i}", "arms": ARMS, "arm": arm, "y": float(rng.random() < (0.7 if arm == best[key]
                                                                                                  else 0.3))}
        if contextual:
            event["x"] = {"f1": round(rng.uniform(-1, 1), 3), "f2": round(rng.uniform(-1, 1), 3)}
        lines.append(json.dumps(event))
    return lines


def _offline(template, histories: dict) -> dict:
    """key -> (mean reward, rewards learned) by ``river.bandit.evaluate_offline``, the key's seeded policy replayed."""
    return {key: bandit.evaluate_offline(policy_for_key(template, key), history, reward_stat=stats.Mean())
            for key, history in histories.items()}


def _histories(log: list[str]) -> dict:
    histories = collections.defaultdict(list)
    for event in map(json.loads, log):
        histories[event["key"]].append((event["arms"], event.get("x"), event["arm"], event["y"]))
    return histories


@pytest.mark.minicluster
@pytest.mark.parametrize("name", POLICIES)
def test_evaluate_on_logged_interactions_equals_rivers_evaluate_offline_per_key(tmp_path, name):
    spec, template, contextual = POLICIES[name]
    log = logged_interactions(contextual=contextual)
    (tmp_path / "log.jsonl").write_text("\n".join(log) + "\n")
    # Only the every-100 reports: reports on time would add curve points wherever a wall-clock boundary falls.
    settings = Settings(model=spec, inputs=(str(tmp_path / "log.jsonl"),),
                        tuning=TuningSettings(metrics_every=100, metrics_interval=3600),
                        outputs=OutputSettings(metrics=str(tmp_path / "metrics"), dead_letters=str(tmp_path / "dead"),
                                               predictions=str(tmp_path / "predictions")))

    evaluation = evaluate(settings)

    offline = _offline(template, _histories(log))
    by_key = final_metrics(read_records(settings.outputs.metrics))[None]
    assert {key: (record["value"], record["n"]) for key, record in by_key.items() if key} == {
        key: (mean.get(), n) for key, (mean, n) in offline.items()}
    figures, = evaluation.models
    matched = sum(n for _, n in offline.values())
    assert figures.metric == "MeanReward" and figures.n == matched
    assert figures.value == pytest.approx(sum(mean.get() * n for mean, n in offline.values()) / matched, rel=1e-12)
    assert [n for n, _ in figures.curve][:2] == [100, 200] and evaluation.dead_letters == 0
    assert len(list(read_records(settings.outputs.predictions))) == len(log)  # every replayed pull is written


@pytest.mark.minicluster
def test_challengers_are_policies_judged_on_the_rewards_of_the_arms_they_pulled(tmp_path):
    """Each policy of a key pulls; it learns, and is scored on, a reward only where its arm is the rewarded one."""
    log = logged_interactions(n_events=2000, seed=5)
    (tmp_path / "log.jsonl").write_text("\n".join(log) + "\n")
    challengers = (bandits.RANDOM, bandits.THOMPSON)
    settings = Settings(model=EPSILON_GREEDY, inputs=(str(tmp_path / "log.jsonl"),),
                        lifecycle=LifecycleSettings(challengers=challengers, promotion_window=30),
                        outputs=OutputSettings(metrics=str(tmp_path / "metrics"), events=str(tmp_path / "events"),
                                               dead_letters=str(tmp_path / "dead")))

    evaluation = evaluate(settings)

    by_model = final_metrics(read_records(settings.outputs.metrics))
    histories = _histories(log)
    templates = {EPSILON_GREEDY: bandits.epsilon_greedy, bandits.RANDOM: bandits.random_policy,
                 bandits.THOMPSON: bandits.thompson}
    for spec, template in templates.items():  # in replay each policy evolves on its own pulls alone
        assert {key: (record["value"], record["n"]) for key, record in by_model[spec].items() if key} == {
            key: (mean.get(), n) for key, (mean, n) in _offline(template, histories).items()}, spec
    assert [figures.name for figures in evaluation.models] == ["served", EPSILON_GREEDY, *challengers]
    assert sum(evaluation.promotions.values()) > 0 and evaluation.dead_letters == 0


@pytest.mark.unit
def test_a_drift_detector_watches_a_keys_rewards_and_a_reset_reseeds_its_policy():
    template = bandits.epsilon_greedy
    metric = make_metric(Kind.BANDIT, None, template)
    policy = LifecyclePolicy(Kind.BANDIT, {EPSILON_GREEDY: template.clone}, metric.clone,
                             detector=make_detector("ADWIN", Kind.BANDIT), on_drift="reset")
    step = LearningStep(Kind.BANDIT, template.clone, metric.clone, policy=policy, arms=tuple(ARMS))
    state, ids, drifts = step.new_state(), {}, []
    for i in range(600):  # the key's rewards jump from nothing to everything
        for line in (f'{{"key": "u", "id": "d{i}"}}', f'{{"key": "u", "id": "d{i}", "y": {float(i >= 300)}}}'):
            outcome = step.process(state, ids, decode_event(line, decisions=True), now_ms=i)
            assert outcome.dead_letter is None, outcome.dead_letter
            drifts.extend(event for event in outcome.events if event["event"] == "drift")
    assert drifts and all(300 <= event["n"] for event in drifts) and drifts[0]["action"] == "reset"
    # After the last reset the key's policy started again from its own seed and learned what followed.
    assert state.model_version == 600 - drifts[-1]["n"] and state.model.seed == key_seed(template, "u")


@pytest.mark.unit
def test_the_example_policy_and_its_log_of_offers_are_what_the_docs_say():
    template, kind = load_template(f"{EXAMPLES / 'bandit.py'}:model")
    assert kind is Kind.BANDIT and key_seed(template, "user-0") is not None
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLES / "make_data.py")
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    shipped = [json.loads(line) for line in (DATA / "offers.jsonl").read_text().splitlines()]
    assert shipped == make_data.offers()  # regenerated by examples/make_data.py
    assert all(not isinstance(decode_event(json.dumps(event), decisions=True), DeadLetter) for event in shipped)


@pytest.mark.unit
def test_options_that_do_not_fit_a_policy_are_refused(tmp_path):
    (tmp_path / "events.jsonl").write_text("")
    with pytest.raises(SettingsError, match="--warm-start copies what a model learned"):
        load_models(Settings(model=EPSILON_GREEDY, inputs=(str(tmp_path),), lifecycle=LifecycleSettings(warm_start=True)))
    with pytest.raises(SettingsError, match="--arms is for a bandit policy, and --model is a classifier"):
        load_models(Settings(model=f"{EXAMPLES / 'classifier.py'}:model", inputs=(str(tmp_path),), arms=("a", "b")))


@pytest.mark.unit
def test_a_reward_after_the_label_ttl_is_a_dead_letter_and_teaches_nothing():
    template = bandits.epsilon_greedy
    metric = make_metric(Kind.BANDIT, None, template)
    step = LearningStep(Kind.BANDIT, template.clone, metric.clone, label_ttl_ms=1000, arms=tuple(ARMS))
    state, ids = step.new_state(), {}
    step.process(state, ids, decode_event('{"key": "u", "id": "late"}', decisions=True), now_ms=0)
    step.process(state, ids, decode_event('{"key": "u", "id": "soon"}', decisions=True), now_ms=0)
    late = step.process(state, ids, decode_event('{"key": "u", "id": "late", "y": 1.0}', decisions=True), now_ms=1001)
    assert late.dead_letter.reason == "expired_id" and state.model_version == 0 and state.model._n == 0
    step.expire(ids, now_ms=900)
    soon = step.process(state, ids, decode_event('{"key": "u", "id": "soon", "y": 1.0}', decisions=True), now_ms=900)
    assert soon.learned and state.model_version == 1 and state.metric.get() == 1.0


@pytest.mark.minicluster
def test_a_policy_that_raises_is_a_model_error_and_keeps_its_draws(tmp_path):
    lines = bandit_stream(n_keys=3, n_decisions=300, seed=6)
    booms = [json.dumps({"key": f"user-{i % 3}", "id": f"boom-{i}", "arms": ["a", "boom"]}) for i in range(20)]
    for number, line in enumerate(booms):
        lines.insert(13 * (number + 1), line)
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    outputs = run(tmp_path, bandits.FUSSY, [tmp_path / "events.jsonl"], parallelism=1, arms=tuple(ARMS))
    kept = [line for line in lines if line not in booms]
    expected, _ = policy_loop(kept, bandits.fussy, default_arms=ARMS)
    assert collections.Counter(letter["reason"] for letter in outputs.dead_letters) == BAD_REASONS + collections.Counter(model_error=20)
    assert {(p["key"], p["id"]): (p["prediction"], p["model_version"]) for p in outputs.predictions} == {
        (key, event_id): (arm, version) for key, result in expected.items() for event_id, arm, version in result.decisions}
    assert {key: policy_state(policy) for key, policy in outputs.models.items()} == {
        key: policy_state(result.policy) for key, result in expected.items()}


@pytest.mark.minicluster
@pytest.mark.kafka
def test_a_log_from_files_then_live_decisions_from_kafka_is_one_plain_loop(kafka_bootstrap, tmp_path):
    """SPEC §5.4 for policies: replay a log of interactions, then decide live, in one graph with one state."""
    history = logged_interactions(n_keys=6, n_events=600, seed=8)
    live = bandit_stream(n_keys=6, n_decisions=500, seed=9)
    (tmp_path / "history.jsonl").write_text("\n".join(history) + "\n")
    (tmp_path / "live.jsonl").write_text("\n".join(live) + "\n")
    topic = new_topic(kafka_bootstrap, partitions=3)
    publish(kafka_bootstrap, topic, [tmp_path / "live.jsonl"])
    outputs = run(tmp_path, EPSILON_GREEDY, [tmp_path / "history.jsonl"], arms=tuple(ARMS),
                  kafka=KafkaSettings(bootstrap=kafka_bootstrap, topics=(topic,), stop_at_latest=True))
    expected, _ = policy_loop(history + live, bandits.epsilon_greedy, default_arms=ARMS)
    assert {(p["key"], p["id"]): (p["prediction"], p["model_version"]) for p in outputs.predictions} == {
        (key, event_id): (arm, version) for key, result in expected.items() for event_id, arm, version in result.decisions}
    assert {key: policy_state(policy) for key, policy in outputs.models.items()} == {
        key: policy_state(result.policy) for key, result in expected.items()}
