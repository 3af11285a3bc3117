# Build the UKey agent (客户端工具) for Windows: dist\agent\ukey-agent-windows-x64.exe.
#
# Run on a Windows 10/11 x64 machine with Python 3.11 (python.org installer, "py" launcher) and
# the project checked out, from the repository root:
#
#     powershell -ExecutionPolicy Bypass -File packaging\build-agent-windows.ps1
#
# It makes a fresh virtualenv in .venv-agent, installs the pinned dependencies from
# requirements.lock (hashes checked), builds with the same packaging\ukey-agent.spec as
# `make agent-dist`, and checks that the result starts and prints its help. Copy the .exe to the
# provider's IDP_AGENT_DIST_DIR. To sign it (signtool), sign before copying: the provider appends
# its origin after the signature. Windows leaves such bytes out of the signature check unless the
# EnableCertPaddingCheck hardening is on; docs/ukey.md §6 says what was and was not tried.
[CmdletBinding()]
param(
    [string]$Python = "py -3.11",
    [string]$Venv = ".venv-agent"
)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)

function Invoke-Checked([string]$Command) {
    Write-Host "==> $Command"
    Invoke-Expression $Command
    if ($LASTEXITCODE -ne 0) { throw "failed ($LASTEXITCODE): $Command" }
}

if (-not (Test-Path "$Venv\Scripts\python.exe")) {
    Invoke-Checked "$Python -m venv $Venv"
}
$Py = Join-Path $Venv "Scripts\python.exe"
Invoke-Checked "$Py -m pip install --require-hashes -r requirements.lock"
Invoke-Checked "$Py -m pip install --no-deps -e ."
Invoke-Checked "$Py -m PyInstaller --noconfirm --clean --distpath dist\agent --workpath build\agent packaging\ukey-agent.spec"

$Exe = Get-ChildItem dist\agent\ukey-agent-windows-*.exe | Select-Object -First 1
if (-not $Exe) { throw "no dist\agent\ukey-agent-windows-*.exe was built" }
# The windowed bundle has no console: --help writes nothing visible, so check the exit code only.
$Help = Start-Process -FilePath $Exe.FullName -ArgumentList "--help" -Wait -PassThru
if ($Help.ExitCode -ne 0) { throw "$($Exe.Name) --help exited with $($Help.ExitCode)" }
$Hash = (Get-FileHash $Exe.FullName -Algorithm SHA256).Hash.ToLower()
Write-Host "built $($Exe.FullName) ($([math]::Round($Exe.Length / 1MB, 1)) MB, SHA-256 $Hash)"
