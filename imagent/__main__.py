import sys

from imagent.assistant.cli import main

sys.exit(main())
