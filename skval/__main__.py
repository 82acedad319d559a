"""Entry point of ``python -m skval``."""

from ._cli import main

raise SystemExit(main())
