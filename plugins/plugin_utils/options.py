# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options a plugin documents, and which given names are not among them.

ansible-core reads a plugin's options from its DOCUMENTATION (with the doc fragments) but drops
unknown names without a word: ``set_options(direct=...)`` takes only the documented keys, for
lookup keywords and for the keys of an inventory file alike (2.16 to 2.21). So a typo such as
``namespce=`` silently meant "no namespace". The plugins check the names themselves, against the
same definitions Ansible uses.
"""

from __future__ import annotations

from ansible import constants as C


def documented_names(plugin):
    """Option names and aliases of a plugin loaded by Ansible's plugin loader."""
    definitions = C.config.get_configuration_definitions(plugin.plugin_type, plugin._load_name) or {}
    names = set(definitions)
    for definition in definitions.values():
        names.update((definition or {}).get("aliases") or [])
    return names


def unknown_names(given, plugin):
    """The names in ``given`` that the plugin does not document, in the order given."""
    known = documented_names(plugin)
    return [name for name in given if name not in known], known
