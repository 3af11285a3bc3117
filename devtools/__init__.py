"""Development tooling behind ``make run``: the demo data, the demo PKI and UKey, and starting
the provider, the demo relying party and the UKey agent together. Not part of the provider:
``idp`` never imports this package (it brings in ``clients/``)."""
