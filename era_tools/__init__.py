"""era_tools: Ethereum consensus-layer history archives (.era files).

Layers, imports pointing down: cli -> serve/sync -> export/frontfill -> store -> verify/bls
-> era/era1 -> ssz -> e2store/framing/fileio/procs -> config/errors.  Nothing happens at
import time.
"""

__version__ = "0.1.0"

# The public API, loaded on first use (PEP 562) so that `import era_tools` (and `era --help`)
# stays cheap: numpy, the SSZ types and pyarrow are imported only by what needs them.
__all__ = ["open_era", "Era", "EraReader", "EraWriter", "StateView", "get_network",
           "load_config", "EraToolsError", "FormatError", "VerificationError", "TABLES"]

_LAZY = {
    "open_era": "api", "Era": "api", "EraReader": "era", "EraWriter": "era",
    "StateView": "ssz.view", "get_network": "config", "load_config": "config",
    "EraToolsError": "errors", "FormatError": "errors", "VerificationError": "errors",
    "TABLES": "tables",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
