"""One exception family; the CLI maps InputError to exit 2 and SecurityError to exit 3.

Messages name the file, the column or the step, never a secret, a token or a customer's value.
"""


class CrossgroupError(Exception):
    """Base of every error crossgroup raises on purpose."""

    exit_code = 1


class InputError(CrossgroupError):
    """Bad input or configuration: the user can fix it (exit code 2)."""

    exit_code = 2


class SecurityError(CrossgroupError):
    """A security refusal: signature, decryption, tamper, replay, key mismatch (exit code 3)."""

    exit_code = 3


class PrivacyCheckError(CrossgroupError):
    """A privacy invariant would be broken by a release; nothing is written (exit code 3)."""

    exit_code = 3
