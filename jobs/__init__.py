"""Entry points and wiring: the ``riverflink`` command and the job graph."""
