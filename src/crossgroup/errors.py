"""One exception family; the CLI turns each into one line on stderr and its exit code.

Exit codes (DESIGN §7): 2 for InputError (bad input or configuration, the user can fix it),
3 for SecurityError and PrivacyCheckError (a refusal), 1 for CheckFailed (a check the user
asked for did not pass) and for any unexpected error. Messages name the file, the column or
the step, never a secret, a token or a customer's value.
"""

from __future__ import annotations

from collections.abc import Iterable


class CrossgroupError(Exception):
    """Base of every error crossgroup raises on purpose.

    `details` are extra lines the CLI prints, indented, under the one-line message (e.g. each
    problem `audit verify` found); most errors have none.
    """

    exit_code = 1

    def __init__(self, message: str, *, details: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)


class InputError(CrossgroupError):
    """Bad input or configuration: the user can fix it (exit code 2)."""

    exit_code = 2


class SecurityError(CrossgroupError):
    """A security refusal: signature, decryption, tamper, replay, key mismatch (exit code 3)."""

    exit_code = 3


class PrivacyCheckError(CrossgroupError):
    """A privacy invariant would be broken by a release; nothing is written (exit code 3)."""

    exit_code = 3


class CheckFailed(CrossgroupError):
    """A check the user asked for ran and did not pass, e.g. `evaluate --check` (exit code 1).

    Not bad input and not a refusal: the command did its work and reports a miss, the way a
    linter or a test runner exits 1 on findings.
    """

    exit_code = 1
