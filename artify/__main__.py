import sys

from artify.cli import main

sys.exit(main())
