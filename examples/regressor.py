"""Per-entity regression, e.g. a chick's weight from its age: ``--model examples/regressor.py:model``.

Only numeric features are used, so categorical ones (a chick's diet) pass harmlessly.
"""

import numbers

from river import compose, linear_model, optim, preprocessing

model = (
    compose.SelectType(numbers.Number)
    | preprocessing.StandardScaler()
    | linear_model.LinearRegression(optimizer=optim.SGD(0.05), intercept_lr=0.5)
)
