import sys

from imagent.cli import main

sys.exit(main())
