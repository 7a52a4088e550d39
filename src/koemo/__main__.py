"""`python -m koemo …` is the `koemo` command."""

import sys

from koemo.cli import main

sys.exit(main())
