"""py-ssz (`ssz`), imported whole, once, under this module's import lock.

Every era_tools module that needs py-ssz imports this first.  py-ssz's modules import each
other in a cycle, and era_tools.ssz loads it on first use (not at import), so two threads could
enter it at once through different modules (tables' thread pool: one hashing a block through
fast.py, one building a fork's types through phase0.py) and one got a partially initialized
module ("cannot import name 'infer_sedes' from partially initialized module 'ssz.sedes'").
Through here the second thread waits until the first has imported all of it.
"""

import ssz as lib  # noqa: F401
import ssz.exceptions  # noqa: F401
import ssz.hashable_structure  # noqa: F401
import ssz.sedes  # noqa: F401
import ssz.sedes.byte  # noqa: F401
import ssz.sedes.serializable  # noqa: F401
import ssz.utils  # noqa: F401
