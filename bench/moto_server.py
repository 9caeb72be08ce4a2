"""moto's server for the benchmarks: moto's own application, served with keep-alive connections.

Two changes from `moto_server`, neither in what is measured (S3 itself serves any number of
concurrent GETs, over connections a client keeps open):
- werkzeug's development server, which moto runs on, closes the connection after every response
  (it cannot drain a request body before the next request line), so each GET paid a TCP set-up and
  a new server thread on both sides. waitress keeps connections open, as S3 does: a small GET costs
  the emulator ~0.9 ms of CPU instead of ~1.4, and boto3 ~1.0 instead of ~1.2 (measured here).
- moto's per-request scan of its own package folder (moto.backends.list_of_moto_modules: a listdir
  and ~180 stats per request) is done once.
"""

import argparse
import functools
import os

import waitress
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

_modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = functools.cache(lambda: _modules)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own main: URLs it writes name the port
    # Threads: the workers' concurrent GETs (ingest.services.FETCH_THREADS per process).
    waitress.serve(DomainDispatcherApplication(create_backend_app), host=args.host, port=args.port, threads=16,
                   connection_limit=200, _quiet=True)


if __name__ == "__main__":
    main()
