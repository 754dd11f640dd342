import sys

from dms_sandbox.cli import main

sys.exit(main())
