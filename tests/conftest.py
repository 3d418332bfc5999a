"""Test settings shared by the suite."""
import os

# Spin-waiting OpenMP threads are 5-20x slower on a shared CPU; must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
