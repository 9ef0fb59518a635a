"""KubeVirt, CDI and Multus simulator for the virtops lab (see docs/lab-simulator.md)."""
