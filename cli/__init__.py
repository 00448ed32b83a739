"""Command-line front end of abkit (installed as the ``abkit_cli`` package)."""
