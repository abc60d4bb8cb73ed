import sys

from nuwa.cli import run

sys.exit(run())
