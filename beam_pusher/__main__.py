"""``python -m beam_pusher``: the command-line interface."""

import sys

from beam_pusher.cli import main

sys.exit(main())
