import sys

from tidings.kubectl_plugin.cli import main

sys.exit(main())
