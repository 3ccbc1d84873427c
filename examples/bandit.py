"""Per-user choices (which offer, which layout, which hour to notify): ``--model examples/bandit.py:model``.

Every key gets its own epsilon-greedy policy, seeded from this one's seed and
the key, so users explore independently and a rerun draws the same arms. A
decision ``{"key", "id", "arms"}`` is answered by a prediction record whose
``prediction`` is the arm; its reward ``{"key", "id", "y"}`` comes later.
Replay a log of what an earlier policy showed (``"arm"`` and ``"y"`` in each
line) to judge this one before it serves::

    .venv/bin/riverflink evaluate --model examples/bandit.py:model --input examples/data/offers.jsonl
"""

from river import bandit

model = bandit.EpsilonGreedy(epsilon=0.1, seed=42)
