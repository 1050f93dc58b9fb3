"""The one exception type users see: a one-line message that names the problem and the fix."""


class ModfitError(Exception):
    """Bad input or an impossible request. The CLI prints the message on one line and exits 2."""


class NoTaskWarning(UserWarning):
    """A run whose final model learned nothing (`modfit.metrics.learned_nothing`): `modfit.run` warns,
    since its numbers then say nothing about a backdoor or a defence."""


def require(condition: bool, message: str) -> None:
    """Options validation: a failed check is one line naming the option."""
    if not condition:
        raise ModfitError(message)
