"""``python -m tfseti.train``: see :mod:`tfseti.train.cli`."""

from tfseti.command import run_command
from tfseti.train.cli import main

run_command(main)
