"""Explanations of a trained model and of a finished run.

``contributions`` (concept contributions, type shares, type agreement), ``intervene`` (concepts switched off,
weight edits), ``video`` (``dance explain``: a new video through the run's path), ``sanity`` (videos played
backwards), ``sankey`` (concept → class diagrams) and ``report/`` (``dance report``). A finished run is read
through :class:`dance.run_view.RunView`; nothing here imports :mod:`dance.pipeline` (checked by ``lint-imports``).
"""
