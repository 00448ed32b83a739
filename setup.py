"""Package discovery for setuptools; the metadata lives in pyproject.toml.

Every package under ``abkit/`` is found automatically, and the click front end in
``cli/`` is installed as ``abkit_cli`` (pyproject.toml alone cannot combine discovery
with that one renamed directory).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["abkit", "abkit.*"]), "abkit_cli"],
    package_dir={"abkit_cli": "cli"},
)
