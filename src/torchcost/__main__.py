import sys

from torchcost.cli import main

sys.exit(main())
