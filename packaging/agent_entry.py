"""Entry point of the bundled UKey agent (PyInstaller runs this file as ``__main__``)."""

from clients.ukey_agent.__main__ import main

if __name__ == "__main__":
    main()
