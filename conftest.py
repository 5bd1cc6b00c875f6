"""Collection for the doctests in convcli/: convcli/dask.py needs the dask extra; without it
its doctests are not collected (tests/dask/ skips with a reason)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("dask") else ["convcli/dask.py"]
