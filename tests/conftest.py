import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # tests/lab.py
DATA = os.path.join(HERE, "data")
CORPUS = os.path.join(os.path.dirname(HERE), "..", "shared", "corpus")
