"""Inside the workspace: magics, widgets, floyd.Job and the Jupyter server extension."""
