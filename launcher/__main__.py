import sys

from taskmesh.cli.main import main

sys.exit(main())
