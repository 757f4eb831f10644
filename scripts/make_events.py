"""`make events`: regenerate events/. The code is devtools/make_events.py; this file is what
`make events` and tests/integration/test_events_files.py run, with PYTHONPATH as the Makefile sets it.
"""

from devtools.make_events import main

if __name__ == "__main__":
    raise SystemExit(main())
