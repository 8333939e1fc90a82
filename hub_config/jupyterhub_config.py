# JupyterHub configuration for Floyd Workspaces: wiring only.
# Every setting lives in floyd_hub.settings (read from FLOYD_* environment variables);
# add site-specific overrides below the configure() call, e.g.
#   c.FloydAuthenticator.open_signup = True
from floyd_hub.settings import configure

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (get_config is provided by JupyterHub's loader)
configure(c)
