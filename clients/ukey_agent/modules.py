"""Finding the UKey vendor's PKCS#11 library without asking the user.

An accountant cannot be expected to know where the 一证通 driver put its PKCS#11 library, so the
agent looks for the module names that SHECA (一证通/协卡) and the common UKey vendors install, in
the directories their installers use. An explicit ``--module`` or ``UKEY_PKCS11_MODULE`` always
wins; SoftHSM2 (development) comes last, so a real UKey driver is preferred when both exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import PureWindowsPath

# File names of vendor PKCS#11 modules, most specific first: names that SHECA (一证通/协卡) and the
# usual UKey makers (Longmai, Haitai, Feitian, Watchdata, Jiecheng, SafeNet, OpenSC) ship in their
# drivers. Drivers change their names between releases; a module not listed here is named with
# --module or UKEY_PKCS11_MODULE (docs/ukey.md, "客户端工具").
WINDOWS_MODULES: tuple[str, ...] = (
    "SHECA_P11.dll",  # SHECA 协卡助手 bundle
    "shecap11.dll",
    "mtoken_gm3000.dll",  # Longmai GM3000 (mToken)
    "gm3000_pkcs11.dll",
    "HTP11.dll",  # Haitai
    "HaiTai_PKCS11.dll",
    "ShuttleCsp11_3000GM.dll",  # Feitian ePass3000GM
    "eps2003csp11.dll",  # Feitian ePass2003
    "ngp11v211.dll",  # Feitian ePass (older)
    "WDPKCS.dll",  # Watchdata
    "WatchData_P11.dll",
    "JCP11.dll",  # Jiecheng
    "eTPKCS11.dll",  # SafeNet eToken
    "opensc-pkcs11.dll",  # OpenSC (generic smart cards)
)
LINUX_MODULES: tuple[str, ...] = (
    "libsheca_p11.so",
    "libgm3000_pkcs11.so",  # Longmai GM3000 (mToken)
    "libmtoken_gm3000.so",
    "libhtp11.so",  # Haitai
    "libshuttle_p11v220.so",  # Feitian ePass3000
    "libcastle.so.1.0.0",  # Feitian ePass2003
    "libwdpkcs.so",  # Watchdata
    "libjcp11.so",  # Jiecheng
    "libeTPkcs11.so",  # SafeNet eToken
    "opensc-pkcs11.so",  # OpenSC
    "libsofthsm2.so",  # SoftHSM2: development tokens only, last on purpose
)
WINDOWS_DIRS: tuple[str, ...] = (
    r"C:\Windows\System32",
    r"C:\Windows\SysWOW64",
    r"C:\Program Files\SHECA",
    r"C:\Program Files (x86)\SHECA",
    r"C:\Program Files\OpenSC Project\OpenSC\pkcs11",
)
LINUX_DIRS: tuple[str, ...] = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/opt/sheca/lib",
    "/opt/longmai/lib",
    "/opt/haitai/lib",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib/aarch64-linux-gnu/softhsm",
)
MODULE_SETTING = "UKEY_PKCS11_MODULE"


def candidates(platform: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every path the agent tries, in order: each known name in each usual directory.

    Names come first (a SHECA module anywhere beats a generic one nearby). On Windows the
    program-files directories are read from the environment when set (another drive or language).
    """
    env = os.environ if environ is None else environ
    if platform == "win32":
        directories: Sequence[str] = (
            *WINDOWS_DIRS,
            *(
                str(PureWindowsPath(env[name]) / vendor)
                for name in ("ProgramFiles", "ProgramFiles(x86)")
                if env.get(name)
                for vendor in ("SHECA", "Longmai", "HaiTai", "Feitian")
            ),
        )
        return [str(PureWindowsPath(d) / n) for n in WINDOWS_MODULES for d in directories]
    return [f"{d}/{n}" for n in LINUX_MODULES for d in LINUX_DIRS]


def find_module(
    platform: str,
    exists: Callable[[str], bool] = os.path.isfile,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The first known vendor module present on this machine, or None."""
    return next((path for path in candidates(platform, environ) if exists(path)), None)
