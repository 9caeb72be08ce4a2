"""moto's server for the benchmarks: moto as is, except that its per-request scan of its own package
folder (moto.backends.list_of_moto_modules: a listdir and ~180 stats per request, about a third of a
small GET's time) is done once. The emulator's speed is not what the benchmarks measure; S3 itself
serves any number of concurrent GETs."""

import functools
import sys

from moto import backends
from moto.server import main

_modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = functools.cache(lambda: _modules)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
