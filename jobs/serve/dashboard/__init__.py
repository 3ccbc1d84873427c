"""The dashboard at ``/`` of ``riverflink serve``: per-key model health, drawn from what a job writes.

``board`` folds the job's metrics, events and dead letters as followers read
them; ``charts`` draws SVG; ``views`` answers the page and what it polls.
"""
