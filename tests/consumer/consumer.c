/* Uses only the installed public API; exits 0 when it works. */
#include <stdio.h>
#include <string.h>

#include <mllp/mllp.h>

int main(void)
{
	static const char msg[] =
	    "MSH|^~\\&|A|B|C|D|20260101000000||ADT^A01^ADT_A01|"
	    "ID1|P|2.5\r";
	unsigned char framed[128];
	size_t n = 0;

	if (strcmp(mllp_version(), MLLP_VERSION_STRING) != 0)
		return 1;
	if (mllp_wrap(NULL, msg, sizeof(msg) - 1, framed, sizeof(framed), &n))
		return 2;
	if (n != sizeof(msg) - 1 + 3 || framed[0] != MLLP_SB)
		return 3;
	/* The installed <mllp/config.h> describes the installed library. */
	if (mllp_tls_available() != (MLLP_HAVE_TLS != 0))
		return 4;
	printf("%s\n", mllp_strerror(MLLP_ERR_TIMEOUT));
	return 0;
}
