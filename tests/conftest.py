import os
import sys

# tests import each other's helpers (e.g. the IDX writer)
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
