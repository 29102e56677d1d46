import sys

from manager_pipeline.cli.main import main

sys.exit(main())
