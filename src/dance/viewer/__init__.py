"""``dance serve``: a small local web app to browse a run's videos, switch concepts off, edit weights and view
Sankey diagrams (standard-library HTTP server; plotly only for the Sankey, ``pip install 'dance-xai[viewer]'``)."""

from dance.viewer.server import ViewerServer, make_server
from dance.viewer.state import ViewerState

__all__ = ["ViewerServer", "ViewerState", "make_server"]
