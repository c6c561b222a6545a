"""The HTML report of a finished run (``dance report RUN``): accuracy, confused class pairs with Sankey diagrams,
sample explanations and the concept catalogue, in one self-contained file.

Modules: ``data`` (reads the run), ``html`` (helpers and page shell), ``poses`` (pose images), ``figure``
(sample-level explanation, paper Fig. 4), ``accuracy``, ``catalogue``, ``sanity``, ``selection``, ``scene_bias``
(sections), ``build`` (assembles the file). The Sankey diagram itself is :mod:`dance.explain.sankey`.
"""

from dance.explain.report.build import ReportResult, build_report
from dance.explain.report.figure import SampleFigure, sample_figure

__all__ = ["ReportResult", "SampleFigure", "build_report", "sample_figure"]
