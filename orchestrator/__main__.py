"""``python -m orchestrator`` works like the ``orchestrate`` command."""
from orchestrator.cli import main

if __name__ == "__main__":
    main()
