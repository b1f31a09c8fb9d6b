"""``python -m workers``: run one worker process configured from the environment."""

from __future__ import annotations

import sys

from workers.ground.errors import ConfigurationError
from workers.ground.logs import configure_logging
from workers.ground.settings import Settings
from workers.main import run_worker


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        run_worker(settings)
    except ConfigurationError as exc:
        print(f"assoc-ingest worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
