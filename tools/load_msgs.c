/* mllp-load's messages: templates read from files, a synthetic ORU^R01
 * or the built-in ADT^A01, and the per-message rewrite of MSH-7 and
 * MSH-10. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"

static const char *prog = LOAD_PROG;

static const char default_template[] =
    "MSH|^~\\&|MLLPLOAD|LOADFAC|RECEIVER|RECVFAC|20240101120000||"
    "ADT^A01^ADT_A01|00000000|P|2.5\r"
    "EVN|A01|20240101120000\r"
    "PID|1||123456^^^HOSP^MR||DOE^JANE^Q||19800101|F|||1 MAIN ST^^"
    "SPRINGFIELD^IL^62701||555-0100\r"
    "PV1|1|I|WARD1^101^A||||1234^SMITH^JOHN|||MED||||||||V000123\r";

/* Add one template; what names it in errors. Returns 0 or an exit code. */
static int add_template(const unsigned char *data, size_t len, const char *what)
{
	if (L.ntmpl == MAX_TEMPLATES) {
		fprintf(stderr, "%s: %s: more than %d template messages\n",
			prog, what, MAX_TEMPLATES);
		return TOOL_EXIT_DATAERR;
	}
	struct mllp_hl7_msg m;
	if (mllp_hl7_parse(&m, data, len) != 0 || !m.control_id.ptr ||
	    !m.timestamp.ptr) {
		fprintf(stderr,
			"%s: %s: not an HL7 message with MSH-7 and MSH-10\n",
			prog, what);
		return TOOL_EXIT_DATAERR;
	}
	struct tmpl *t = &L.tmpl[L.ntmpl++];
	t->data = data;
	t->len = len;
	t->ts_off = (size_t)((const unsigned char *)m.timestamp.ptr - data);
	t->ts_len = m.timestamp.len;
	t->id_off = (size_t)((const unsigned char *)m.control_id.ptr - data);
	t->id_len = m.control_id.len;
	t->out_len = len - t->ts_len - t->id_len + TS_LEN + ID_LEN;
	if (L.o.keys) {
		/* --keys: PID-3.1 becomes the patient, the lane's key */
		struct mllp_str v;
		if (mllp_hl7_value(&m, "PID-3.1", &v) != 0 ||
		    (const unsigned char *)v.ptr < data + t->id_off) {
			fprintf(stderr,
				"%s: %s: --keys needs a PID-3 in the "
				"message\n",
				prog, what);
			L.ntmpl--;
			return TOOL_EXIT_DATAERR;
		}
		t->pid_off = (size_t)((const unsigned char *)v.ptr - data);
		t->pid_len = v.len;
		t->out_len = t->out_len - v.len + KEY_LEN;
	}
	if (t->out_len > L.max_len)
		L.max_len = t->out_len;
	return 0;
}

/* A synthetic ORU^R01 of about `size` bytes (one OBX carries the filler). */
static unsigned char *make_oru(size_t size, size_t *len)
{
	static const char head[] =
	    "MSH|^~\\&|MLLPLOAD|LOADFAC|RECEIVER|RECVFAC|20240101120000||"
	    "ORU^R01^ORU_R01|00000000|P|2.5\r"
	    "PID|1||123456^^^HOSP^MR||DOE^JANE||19800101|F\r"
	    "OBR|1|ORD1|FIL1|LOAD^Load test^L|||20240101120000\r"
	    "OBX|1|TX|LOAD^Payload^L||";
	static const char tail[] = "||||||F\r";
	size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
	size_t fill = size > fixed ? size - fixed : 1;
	unsigned char *p = malloc(fixed + fill + 1);
	if (!p)
		return NULL;
	memcpy(p, head, sizeof(head) - 1);
	for (size_t i = 0; i < fill; i++)
		p[sizeof(head) - 1 + i] = (unsigned char)('A' + i % 26);
	memcpy(p + sizeof(head) - 1 + fill, tail, sizeof(tail) - 1);
	*len = fixed + fill;
	return p;
}

void load_gen_message(const struct tmpl *t, uint64_t seq, unsigned char *out)
{
	static _Thread_local time_t ts_sec = -1;
	static _Thread_local char ts[TS_LEN + 1];
	time_t now = time(NULL);
	if (now != ts_sec) {
		struct tm tm;
		gmtime_r(&now, &tm);
		char tmp[32];
		snprintf(tmp, sizeof(tmp), "%04d%02d%02d%02d%02d%02d",
			 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
		memcpy(ts, tmp, TS_LEN);
		ts_sec = now;
	}
	unsigned char *w = out;
	memcpy(w, t->data, t->ts_off);
	w += t->ts_off;
	memcpy(w, ts, TS_LEN);
	w += TS_LEN;
	size_t mid = t->ts_off + t->ts_len;
	memcpy(w, t->data + mid, t->id_off - mid);
	w += t->id_off - mid;
	*w = 'L';
	for (int i = ID_DIGITS; i >= 1; i--) {
		w[i] = (unsigned char)('0' + seq % 10);
		seq /= 10;
	}
	w += ID_LEN;
	size_t rest = t->id_off + t->id_len;
	if (L.o.keys) {
		/* --keys: the patient, P + KEY_DIGITS digits */
		memcpy(w, t->data + rest, t->pid_off - rest);
		w += t->pid_off - rest;
		uint64_t k = seq % L.o.keys;
		*w = 'P';
		for (int i = KEY_DIGITS; i >= 1; i--) {
			w[i] = (unsigned char)('0' + k % 10);
			k /= 10;
		}
		w += KEY_LEN;
		rest = t->pid_off + t->pid_len;
	}
	memcpy(w, t->data + rest, t->len - rest);
}

/* The templates of one file: every message in it, named FILE: message N
 * in errors. */
static int load_file(const char *path, struct load_inputs *in, size_t i)
{
	int rc = tool_read_file(path, &in->bufs[i]);
	if (rc != 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", prog, path,
			strerror(-rc));
		return TOOL_EXIT_NOINPUT;
	}
	size_t first = in->msgs.n;
	if (tool_split(in->bufs[i].data, in->bufs[i].len, false, &in->msgs,
		       NULL) != 0) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return TOOL_EXIT_FAIL;
	}
	if (in->msgs.n == first) {
		fprintf(stderr, "%s: %s: no message in the file\n", prog, path);
		return TOOL_EXIT_DATAERR;
	}
	for (size_t k = first; k < in->msgs.n; k++) {
		char what[600];
		snprintf(what, sizeof(what), "%s: message %zu", path,
			 k - first + 1);
		rc = add_template(in->msgs.v[k].data, in->msgs.v[k].len, what);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int load_templates(const struct opts *o, struct load_inputs *in)
{
	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < o->nfiles; i++) {
		int rc = load_file(o->files[i], in, i);
		if (rc != 0)
			return rc;
	}
	if (o->size) {
		size_t len;
		in->oru = make_oru(o->size, &len);
		if (!in->oru) {
			fprintf(stderr, "%s: out of memory\n", prog);
			return TOOL_EXIT_FAIL;
		}
		int rc = add_template(in->oru, len, "synthetic ORU^R01");
		if (rc != 0)
			return rc;
	}
	if (L.ntmpl == 0)
		return add_template((const unsigned char *)default_template,
				    sizeof(default_template) - 1,
				    "built-in ADT^A01");
	return 0;
}

void load_inputs_free(struct load_inputs *in)
{
	free(in->oru);
	in->oru = NULL;
	tool_msgs_free(&in->msgs);
	for (size_t i = 0; i < MAX_TEMPLATES; i++)
		tool_buf_free(&in->bufs[i]);
}
