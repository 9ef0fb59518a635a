"""For every pytest suite: Ansible's home (local temp files, galaxy caches), the module processes'
temp folder and the async jobs' files are in the checkout, never the user's ~/.ansible or
~/.ansible_async (tests/common.sh does the same for the shell suites)."""
import os

ANSIBLE_HOME = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache", "ansible-home")
os.environ.setdefault("ANSIBLE_HOME", ANSIBLE_HOME)
os.environ.setdefault("ANSIBLE_REMOTE_TMP", os.path.join(os.environ["ANSIBLE_HOME"], "remote-tmp"))
os.environ.setdefault("ANSIBLE_ASYNC_DIR", os.path.join(os.environ["ANSIBLE_HOME"], "async"))
# ssh's ControlPersist sockets default to ~/.ansible/cp whatever ANSIBLE_HOME says
os.environ.setdefault("ANSIBLE_SSH_CONTROL_PATH_DIR", os.path.join(os.environ["ANSIBLE_HOME"], "cp"))
