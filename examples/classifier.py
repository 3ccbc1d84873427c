"""Per-entity classification (will this user click, is this payment fraud): ``--model examples/classifier.py:model``."""

from river import linear_model, optim, preprocessing

model = preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.SGD(0.1))
