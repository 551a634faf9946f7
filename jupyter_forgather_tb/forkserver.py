"""Entry point of the fork server: ``python -m jupyter_forgather_tb.forkserver FD``.

The code is in :mod:`jupyter_forgather_tb.job.forkserver`; this module only keeps
the stable name that ``ps`` shows.
"""

import sys

from .job.forkserver import serve

if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
