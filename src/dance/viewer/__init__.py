"""``dance serve``: a small local web app to browse a run's videos, switch concepts off, edit weights and view
Sankey diagrams (FastAPI served by uvicorn, guarded by a Host allow-list, an Origin check and a per-launch token;
plotly, a core dependency, draws the Sankey)."""

from dance.viewer.server import Guard, ViewerServer, create_app, guarded_app, make_server
from dance.viewer.state import ViewerState

__all__ = ["Guard", "ViewerServer", "ViewerState", "create_app", "guarded_app", "make_server"]
