/*
 * A fake SKF (GM/T 0016-2012) library for the agent's tests: the real C calling convention and
 * structure layouts, with one in-memory device, application and container. It is not an
 * implementation of SM2: ECCSignData hands the digest to a callback the test registers.
 *
 * Build: cc -shared -fPIC -o libfakeskf.so fake_skf.c
 */
#include <stdint.h>
#include <string.h>

typedef uint32_t ULONG;
typedef int32_t BOOL;
typedef void *HANDLE;
typedef unsigned char BYTE;

#define SAR_OK 0x00000000
#define SAR_FAIL 0x0A000001
#define SAR_INVALIDHANDLEERR 0x0A000005
#define SAR_INVALIDPARAMERR 0x0A000006
#define SAR_INDATALENERR 0x0A000010
#define SAR_CERTNOTFOUNTERR 0x0A00001C
#define SAR_BUFFER_TOO_SMALL 0x0A000020
#define SAR_PIN_INCORRECT 0x0A000024
#define SAR_PIN_LOCKED 0x0A000025
#define SAR_USER_TYPE_INVALID 0x0A00002A
#define SAR_USER_NOT_LOGGED_IN 0x0A00002D

typedef struct { BYTE major; BYTE minor; } VERSION;
typedef struct {
    VERSION Version;
    char Manufacturer[64];
    char Issuer[64];
    char Label[32];
    char SerialNumber[32];
    VERSION HWVersion;
    VERSION FirmwareVersion;
    ULONG AlgSymCap, AlgAsymCap, AlgHashCap, DevAuthAlgId;
    ULONG TotalSpace, FreeSpace, MaxECCBufferSize, MaxBufferSize;
    BYTE Reserved[64];
} DEVINFO;
typedef struct { BYTE r[64]; BYTE s[64]; } ECCSIGNATUREBLOB;
typedef int (*signer_cb)(const BYTE *digest, ULONG len, BYTE *r32, BYTE *s32);

#define DEV ((HANDLE)0x1001)
#define APP ((HANDLE)0x2001)
#define CON ((HANDLE)0x3001)

static BYTE g_cert[8192];
static ULONG g_cert_len;
static char g_pin[64];
static ULONG g_max_retries, g_retries;
static int g_logged_in, g_open, g_devices, g_left_aligned;
static ULONG g_container_type;
static signer_cb g_signer;
static BYTE g_digest[64];
static ULONG g_digest_len;

void fake_setup(const BYTE *cert, ULONG cert_len, const char *pin, ULONG retries, signer_cb cb,
                ULONG container_type, int devices, int left_aligned) {
    memcpy(g_cert, cert, cert_len);
    g_cert_len = cert_len;
    strncpy(g_pin, pin, sizeof(g_pin) - 1);
    g_max_retries = g_retries = retries;
    g_signer = cb;
    g_container_type = container_type;
    g_devices = devices;
    g_left_aligned = left_aligned;
    g_logged_in = g_open = 0;
    g_digest_len = 0;
}
int fake_open_handles(void) { return g_open; }
int fake_logged_in(void) { return g_logged_in; }
ULONG fake_last_digest(BYTE *out) { memcpy(out, g_digest, g_digest_len); return g_digest_len; }

/* A name list "a\0b\0\0", with the two-call size protocol of §7.1. */
static ULONG name_list(const char *const *names, int count, char *out, ULONG *size) {
    char buf[256];
    ULONG n = 0;
    for (int i = 0; i < count; i++) {
        size_t len = strlen(names[i]) + 1;
        memcpy(buf + n, names[i], len);
        n += (ULONG)len;
    }
    buf[n++] = '\0';
    if (size == NULL) return SAR_INVALIDPARAMERR;
    if (out == NULL) { *size = n; return SAR_OK; }
    if (*size < n) { *size = n; return SAR_BUFFER_TOO_SMALL; }
    memcpy(out, buf, n);
    *size = n;
    return SAR_OK;
}

ULONG SKF_EnumDev(BOOL bPresent, char *szNameList, ULONG *pulSize) {
    static const char *const devices[] = {"fake-dev-1", "fake-dev-2"};
    (void)bPresent;
    return name_list(devices, g_devices, szNameList, pulSize);
}
ULONG SKF_ConnectDev(char *szName, HANDLE *phDev) {
    if (strncmp(szName, "fake-dev-", 9) != 0) return SAR_INVALIDPARAMERR;
    *phDev = DEV;
    g_open++;
    return SAR_OK;
}
ULONG SKF_DisConnectDev(HANDLE hDev) { if (hDev != DEV) return SAR_INVALIDHANDLEERR; g_open--; return SAR_OK; }
ULONG SKF_GetDevInfo(HANDLE hDev, DEVINFO *info) {
    if (hDev != DEV) return SAR_INVALIDHANDLEERR;
    memset(info, 0, sizeof(*info));
    info->Version.major = 1;
    strcpy(info->Manufacturer, "Fake GM Ltd");
    strcpy(info->Issuer, "Fake Issuer");
    strcpy(info->Label, "fake-sm2");
    strcpy(info->SerialNumber, "FAKE0001");
    return SAR_OK;
}
ULONG SKF_EnumApplication(HANDLE hDev, char *szAppName, ULONG *pulSize) {
    static const char *const apps[] = {"DEFAULT"};
    if (hDev != DEV) return SAR_INVALIDHANDLEERR;
    return name_list(apps, 1, szAppName, pulSize);
}
ULONG SKF_OpenApplication(HANDLE hDev, char *szAppName, HANDLE *phApp) {
    if (hDev != DEV || strcmp(szAppName, "DEFAULT") != 0) return SAR_INVALIDPARAMERR;
    *phApp = APP;
    g_open++;
    return SAR_OK;
}
ULONG SKF_CloseApplication(HANDLE hApp) { if (hApp != APP) return SAR_INVALIDHANDLEERR; g_open--; return SAR_OK; }
ULONG SKF_VerifyPIN(HANDLE hApp, ULONG ulPINType, char *szPIN, ULONG *pulRetryCount) {
    if (hApp != APP) return SAR_INVALIDHANDLEERR;
    if (ulPINType != 1) return SAR_USER_TYPE_INVALID;
    if (g_retries == 0) { *pulRetryCount = 0; return SAR_PIN_LOCKED; }
    if (strcmp(szPIN, g_pin) != 0) { *pulRetryCount = --g_retries; return SAR_PIN_INCORRECT; }
    g_retries = g_max_retries;
    g_logged_in = 1;
    return SAR_OK;
}
ULONG SKF_ClearSecureState(HANDLE hApp) { if (hApp != APP) return SAR_INVALIDHANDLEERR; g_logged_in = 0; return SAR_OK; }
ULONG SKF_EnumContainer(HANDLE hApp, char *szContainerName, ULONG *pulSize) {
    static const char *const containers[] = {"sign-container"};
    if (hApp != APP) return SAR_INVALIDHANDLEERR;
    return name_list(containers, 1, szContainerName, pulSize);
}
ULONG SKF_OpenContainer(HANDLE hApp, char *szContainerName, HANDLE *phContainer) {
    if (hApp != APP || strcmp(szContainerName, "sign-container") != 0) return SAR_INVALIDPARAMERR;
    *phContainer = CON;
    g_open++;
    return SAR_OK;
}
ULONG SKF_CloseContainer(HANDLE hCon) { if (hCon != CON) return SAR_INVALIDHANDLEERR; g_open--; return SAR_OK; }
ULONG SKF_GetContainerType(HANDLE hCon, ULONG *pulType) {
    if (hCon != CON) return SAR_INVALIDHANDLEERR;
    *pulType = g_container_type;
    return SAR_OK;
}
ULONG SKF_ExportCertificate(HANDLE hCon, BOOL bSignFlag, BYTE *pbCert, ULONG *pulCertLen) {
    if (hCon != CON) return SAR_INVALIDHANDLEERR;
    if (!bSignFlag) return SAR_CERTNOTFOUNTERR;
    if (pbCert == NULL) { *pulCertLen = g_cert_len; return SAR_OK; }
    if (*pulCertLen < g_cert_len) { *pulCertLen = g_cert_len; return SAR_BUFFER_TOO_SMALL; }
    memcpy(pbCert, g_cert, g_cert_len);
    *pulCertLen = g_cert_len;
    return SAR_OK;
}
ULONG SKF_ECCSignData(HANDLE hCon, BYTE *pbDigest, ULONG ulDigestLen, ECCSIGNATUREBLOB *pSignature) {
    if (hCon != CON) return SAR_INVALIDHANDLEERR;
    if (!g_logged_in) return SAR_USER_NOT_LOGGED_IN;
    if (ulDigestLen != 32) return SAR_INDATALENERR;
    memcpy(g_digest, pbDigest, ulDigestLen);
    g_digest_len = ulDigestLen;
    memset(pSignature, 0, sizeof(*pSignature));
    int offset = g_left_aligned ? 0 : 32;
    if (!g_signer || g_signer(pbDigest, ulDigestLen, pSignature->r + offset, pSignature->s + offset) != 0)
        return SAR_FAIL;
    return SAR_OK;
}
