"""Entry point of `python -m crm`."""

import sys

from crm.cli import main

sys.exit(main())
