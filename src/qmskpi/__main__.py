"""``python -m qmskpi`` is the ``qmskpi`` command."""

from qmskpi.cli import main

raise SystemExit(main())
