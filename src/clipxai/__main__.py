"""``python -m clipxai VERB ...``: how workflow jobs run the command (from the source tree, in any environment)."""

import sys

from clipxai.cli import main

sys.exit(main())
