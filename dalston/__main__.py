import sys

from dalston.cli import main

sys.exit(main())
