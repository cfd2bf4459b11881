import sys

from kqv_demo.cli import main

sys.exit(main())
