"""The one error type for a user's mistake.

Every check of an argument or of the data that a user can fix raises ``InputError``: a missing
or unreadable file, a bad kernel, a wrong shape, a bad option, a size that cannot fit. The
command line shows its one-line message and exits 2; any other exception is convcli's own bug
(exit 1, "internal error"). It subclasses ValueError, so ``except ValueError`` still catches
it in a user's code.
"""

from __future__ import annotations


class InputError(ValueError):
    """A mistake the user can fix; the message names the problem and the fix in one line."""
