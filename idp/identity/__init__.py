"""The identity model and its rules: accounts, organisations and their identities
(``models``), the USCC and phone formats (``uscc``, ``phone``), who a login acts as
(``principal``) and who may act as which identity (``eligibility``)."""
