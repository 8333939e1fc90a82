"""Where jobs run: the contract (base.py) and its implementations (docker, local)."""
