"""Unit tests of the lab's own code (lab/labkit, lab/simulator): pure functions, no control plane."""
import sys
from pathlib import Path

LAB = Path(__file__).resolve().parents[3] / "lab"
if str(LAB) not in sys.path:
    sys.path.insert(0, str(LAB))
