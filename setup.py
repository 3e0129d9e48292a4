"""Builds tpslab's one compiled module, the fast reader of part files (tpslab/_partfile.c). It is optional:
where no C compiler is at hand the build goes on without it and tpslab reads the files with msgspec
(same results; `tpslab evaluate` on the test set takes about 1 s more). Everything else is configured in pyproject.toml."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("tpslab._partfile", ["tpslab/_partfile.c"], optional=True)])
