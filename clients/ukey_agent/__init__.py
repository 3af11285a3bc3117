"""UKey agent (UKey 助手): the program an organisation's administrator runs on their own PC so the
provider's login page can have the 法人一证通 UKey sign a login challenge.

The browser cannot reach a USB token, so this agent listens on 127.0.0.1, answers only the origins
it was configured with, builds the signed payload itself (with the requesting page's ``Origin``)
and signs it with the token's signing key after the user's PIN. The protocol is in
``docs/ukey-protocol.md`` and ``clients/ukey_agent/README.md``. This is a separate program: it
never imports the provider's ``idp`` package.
"""

from __future__ import annotations

AGENT_NAME = "ukey-agent"
PROTOCOL_VERSION = 1
