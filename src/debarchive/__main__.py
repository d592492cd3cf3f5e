import sys

from debarchive.cli import main

sys.exit(main())
