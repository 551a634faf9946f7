"""Entry point of a job's process: ``python -m jupyter_forgather_tb.runner``.

The code is in :mod:`jupyter_forgather_tb.job.runner`; this module only keeps the
stable name that job tables and ``ps`` show.
"""

import sys

from .job.runner import main

if __name__ == "__main__":
    sys.exit(main())
