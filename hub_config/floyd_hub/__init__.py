"""JupyterHub side of Floyd Workspaces: settings, authenticator, spawners, launcher."""
