/* Helpers shared by the HL7 v2 view tests (see hl7_util.h). */
#include "hl7_util.h"

struct mllp_str str_of(const char *s)
{
	struct mllp_str v = {s, strlen(s)};
	return v;
}

void parse_str(struct parsed *p, const char *s)
{
	size_t n = strlen(s);
	unsigned char *d = tu_guard_copy(&p->g, s, n);

	p->rc = mllp_hl7_parse(&p->m, d, n);
}

void parse_corpus(struct parsed *p, const char *rel)
{
	size_t n;
	unsigned char *raw = tu_corpus(rel, &n);
	unsigned char *d = tu_guard_copy(&p->g, raw, n);

	free(raw);
	p->rc = mllp_hl7_parse(&p->m, d, n);
}

void field_of(const struct mllp_hl7_msg *m, const char *seg_id, unsigned nth,
	      unsigned idx, struct mllp_str *out)
{
	struct mllp_str seg;

	assert_int_equal(mllp_hl7_find_segment(m, seg_id, nth, &seg), 0);
	assert_int_equal(mllp_hl7_field(m, seg, idx, out), 0);
}
