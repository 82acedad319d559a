"""Entry point of ``python -m skval``."""

from ._cli import main

if __name__ == "__main__":  # importing the module (doctest collection, tools) runs nothing
    raise SystemExit(main())
