"""era_tools: Ethereum consensus-layer history archives (.era files).

Layers, imports pointing down: cli -> serve/sync -> export/frontfill -> store -> verify/bls
-> era/era1 -> ssz -> e2store/framing/fileio/procs -> config/errors.  Nothing happens at
import time.
"""

__version__ = "0.1.0"
