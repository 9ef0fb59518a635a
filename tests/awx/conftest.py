"""tests/awx: the execution environment, the survey specs, and the playbooks run as AWX job templates."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
