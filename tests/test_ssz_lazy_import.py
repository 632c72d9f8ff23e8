"""era_tools.ssz loads py-ssz on first use, not at import (so era.py and the server can import
the raw byte layouts, era_tools.ssz.layout, without it), and threads that enter py-ssz at once
through different modules all get it whole.  Fresh processes: the import state is the test."""

from __future__ import annotations

import subprocess
import sys

RACE = """
import threading
import era_tools.ssz as S
errs = []
def run(f):
    try:
        f()
    except Exception as e:
        errs.append(repr(e))
def fast():
    from era_tools.ssz import fast  # noqa
def types():
    S.types_for("phase0", "minimal")
def json():
    from era_tools.ssz import json  # noqa
ts = [threading.Thread(target=run, args=(f,)) for f in (fast, types, json)]
for t in ts: t.start()
for t in ts: t.join()
print(errs)
"""


def test_layouts_and_era_files_import_without_py_ssz():
    out = subprocess.run([sys.executable, "-c", "import sys, era_tools.era, era_tools.ssz.layout, "
                          "era_tools.serve.app; print(sorted(m for m in sys.modules if m == 'ssz' "
                          "or m.startswith('ssz.')))"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_threads_entering_py_ssz_at_once_all_get_it_whole():
    # before era_tools/ssz/_pyssz.py, 10 of 12 such processes failed with "cannot import name
    # 'infer_sedes' from partially initialized module 'ssz.sedes'"
    for _ in range(8):
        out = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "[]", out.stdout
