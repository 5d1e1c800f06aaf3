/* Helpers shared by the ACK tests (see ack_util.h). */
#include "ack_util.h"

const char *const codes[6] = {"AA", "AE", "AR", "CA", "CE", "CR"};

enum mllp_verdict verdict_of_code(const char *code)
{
	switch (code[1]) {
	case 'A':
		return MLLP_APPLICATION_ACCEPT;
	case 'E':
		return MLLP_APPLICATION_ERROR;
	default:
		return MLLP_APPLICATION_REJECT;
	}
}

void load_at(struct blob *b, const char *dir, const char *rel)
{
	unsigned char *raw = tu_corpus_at(dir, rel, &b->n);

	b->d = tu_guard_copy(&b->g, raw, b->n);
	free(raw);
}

void load(struct blob *b, const char *rel)
{
	load_at(b, tu_corpus_dir(NULL), rel);
}

void load_str(struct blob *b, const char *s)
{
	b->n = strlen(s);
	b->d = tu_guard_copy(&b->g, s, b->n);
}

void unload(struct blob *b)
{
	tu_guard_free(&b->g);
}

/* The ACK of the last expect(): out's views point into it. */
struct blob held;

void release_held(void)
{
	if (held.g.map != NULL)
		unload(&held);
}

int teardown(void **state)
{
	(void)state;
	release_held();
	return 0;
}
