"""Bandit policies per key (SPEC §7): what a decision, a reward and a logged interaction do to a key's policy.

A ``river.bandit`` policy is no estimator: it chooses an arm (``pull``) and
learns from that arm's reward (``update``), with the context ``x`` for
contextual policies such as ``LinUCBDisjoint``. Each key explores on its own,
reproducibly: its policy is the template with the seed
``(template.seed + crc32(key)) % 2**32``, a function of the key alone, so a
restart, a rescale or a plain river loop draw the same arms.
"""

import dataclasses
import zlib

from river import bandit, metrics, stats

__all__ = ["is_policy", "key_seed", "policy_for_key", "BanditVerbs", "MeanReward"]


def is_policy(model) -> bool:
    """Whether ``model`` is a river bandit policy.

    >>> from river import bandit, linear_model
    >>> is_policy(bandit.EpsilonGreedy(0.1)), is_policy(linear_model.LinearRegression())
    (True, False)
    """
    return isinstance(model, bandit.base.Policy)


def key_seed(template, key: str) -> int | None:
    """The seed of ``key``'s policy: the template's plus the key's CRC-32, modulo 2**32; None for an unseeded template.

    >>> from river import bandit
    >>> key_seed(bandit.EpsilonGreedy(0.1, seed=42), "user-1"), key_seed(bandit.EpsilonGreedy(0.1), "user-1")
    (2116437566, None)
    """
    seed = getattr(template, "seed", None)
    if seed is None:
        return None
    return (seed + zlib.crc32(str(key).encode())) % 2**32


def policy_for_key(template, key: str):
    """A fresh policy for ``key``: the template cloned, with the key's seed when the template has one."""
    seed = key_seed(template, key)
    return template.clone() if seed is None else template.clone({"seed": seed})


@dataclasses.dataclass(frozen=True)
class BanditVerbs:
    """``pull`` and ``update`` for one policy class: contextual policies take the context ``x``, others do not."""

    contextual: bool

    @classmethod
    def for_policy(cls, template) -> "BanditVerbs":
        return cls(contextual=isinstance(template, bandit.base.ContextualPolicy))

    def pull(self, policy, arms: list, x: dict | None):
        """The arm ``policy`` pulls among ``arms`` (changes the policy's random state, if it draws)."""
        if self.contextual:
            return policy.pull(arms, context=x or {})
        return policy.pull(arms)

    def update(self, policy, arm, x: dict | None, reward: float) -> None:
        """Learn ``reward`` for ``arm`` (pulled with context ``x``)."""
        if self.contextual:
            policy.update(arm, x or {}, reward)
        else:
            policy.update(arm, reward)


class MeanReward(metrics.base.Metric):
    """The mean of the rewards a policy learned from: a bandit's progressive metric (``"metric": "MeanReward"``).

    ``update(reward, arm)`` counts the reward; the arm is not judged. The mean
    is river's ``stats.Mean``, so a plain river loop gets the same bits.

    >>> metric = MeanReward()
    >>> for reward in (1.0, 0.0, 1.0, 1.0):
    ...     metric.update(reward, "a")
    >>> metric.get()
    0.75
    """

    def __init__(self):
        self._mean = stats.Mean()

    def update(self, y_true, y_pred, w=1.0) -> None:
        self._mean.update(y_true, w)

    def revert(self, y_true, y_pred, w=1.0) -> None:
        self._mean.revert(y_true, w)

    def get(self) -> float:
        return self._mean.get()

    @property
    def bigger_is_better(self) -> bool:
        return True

    @property
    def requires_labels(self) -> bool:
        return True

    def works_with(self, model) -> bool:
        return is_policy(model)
