"""Known bugs found by the hardening tests (issue 8), not fixed yet.

Each listed test is marked as a strict expected failure by conftest.py: CI stays green while the bug
is recorded, and fixing it turns the test red until its line is removed here.
"""

KNOWN_BUGS: dict[str, str] = {
}
