"""Moved: the end-to-end pipeline is :mod:`tpslab.pipeline`, the application layer above the models.

This old name still imports, with a FutureWarning, for code written against tpslab's first release; it
is the same module, and it will go in a later release.
"""

import sys
import warnings

warnings.warn("tpslab.models.pipeline moved to tpslab.pipeline: import from there (the old name will go)",
              FutureWarning, stacklevel=2)

from tpslab import pipeline  # noqa: E402  the one import up the layers: tests/test_layers.py ALIASES

sys.modules[__name__] = pipeline
