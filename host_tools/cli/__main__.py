"""`python -m host_tools.cli` = the `octo` command."""

from host_tools.cli import main

raise SystemExit(main())
