"""For every pytest suite: Ansible's home (local temp files, galaxy caches) is in the checkout,
never the user's ~/.ansible (tests/common.sh does the same for the shell suites)."""
import os

ANSIBLE_HOME = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache", "ansible-home")
os.environ.setdefault("ANSIBLE_HOME", ANSIBLE_HOME)
