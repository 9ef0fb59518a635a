"""Stand-in for ansible-test's get-pip bootstrap script, for machines that reach PyPI only.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com to put pip into each sanity
virtual environment. tests/run-sanity.sh installs this file in ansible-test's cache instead: it
installs the requested pip from the package index with the pip of the project venv, whose
site-packages run-sanity.sh writes in place of @PIP_SITE@ (ansible-test clears the environment).
"""
import os
import sys

sys.path.insert(0, os.environ.get("VIRTOPS_PIP_SITE") or "@PIP_SITE@")

from pip._internal.cli.main import main  # noqa: E402  pylint: disable=wrong-import-position

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + args))
