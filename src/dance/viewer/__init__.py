"""``dance serve``: a small local web app to browse a run's videos, switch concepts off, edit weights and view
Sankey diagrams (standard-library HTTP server; plotly, a core dependency, draws the Sankey)."""

from dance.viewer.server import ViewerServer, make_server
from dance.viewer.state import ViewerState

__all__ = ["ViewerServer", "ViewerState", "make_server"]
