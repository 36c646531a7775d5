"""A Griffe extension for the API reference: the docstrings' Sphinx roles
(:class:`~lstmkit.layers.CRF`, :func:`build_rnn`...) shown as the code they name, since
MkDocs renders docstrings as Markdown."""

import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _plain(match: re.Match) -> str:
    target = match.group(1)
    return f"`{target.rsplit('.', 1)[-1] if match.group(0).split('`')[1].startswith('~') else target}`"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_plain, obj.docstring.value)
