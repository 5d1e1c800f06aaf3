/* The receiver-wide budget of buffered bytes (see recv_budget.h). */
#include "recv_budget.h"

void mllpi_rbudget_init(struct mllpi_rbudget *b, size_t limit, size_t fair_min,
			void (*reads)(struct mllpi_rbudget_conn *),
			void (*shed)(struct mllpi_rbudget_conn *))
{
	b->limit = limit;
	b->fair_min = fair_min < MLLPI_RBUDGET_FAIR_MIN ? MLLPI_RBUDGET_FAIR_MIN
							: fair_min;
	b->total = 0;
	b->n = 0;
	b->npaused = 0;
	b->pressure = false;
	b->head = NULL;
	b->reads = reads;
	b->shed = shed;
	atomic_init(&b->st_total, 0);
	atomic_init(&b->st_peak, 0);
	atomic_init(&b->st_shed, 0);
	atomic_init(&b->st_pauses, 0);
}

/* Relaxed: the manager is the only writer; readers see each figure whole. */
static void publish(struct mllpi_rbudget *b)
{
	atomic_store_explicit(&b->st_total, b->total, memory_order_relaxed);
	if (b->total > atomic_load_explicit(&b->st_peak, memory_order_relaxed))
		atomic_store_explicit(&b->st_peak, b->total,
				      memory_order_relaxed);
}

static void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static size_t fair_share(const struct mllpi_rbudget *b)
{
	size_t f = b->limit / (2u * (b->n ? b->n : 1u));
	return f < b->fair_min ? b->fair_min : f;
}

static void pause_conn(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc)
{
	bc->paused = true;
	b->npaused++;
	bump(&b->st_pauses);
	b->reads(bc);
}

static void resume_conn(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc)
{
	bc->paused = false;
	b->npaused--;
	b->reads(bc);
}

/* Under pressure: every connection above the fair share is paused, every
 * paused one at or below it (its bytes fell, or connections closed and the
 * share grew) reads again. The hooks may unlist a connection (never free
 * it within the call), so the walk keeps its place and skips those. */
static void rebalance(struct mllpi_rbudget *b)
{
	struct mllpi_rbudget_conn *x = b->head;
	while (x && b->pressure) {
		struct mllpi_rbudget_conn *next = x->next;
		size_t fair = fair_share(b);
		if (x->listed && !x->paused && x->bytes > fair)
			pause_conn(b, x);
		else if (x->listed && x->paused && x->bytes <= fair)
			resume_conn(b, x);
		x = next;
	}
}

/* Below half the limit: every paused connection reads again. */
static void relieve(struct mllpi_rbudget *b)
{
	if (!b->pressure || b->total >= b->limit / 2)
		return;
	b->pressure = false;
	struct mllpi_rbudget_conn *x = b->head;
	while (x) {
		struct mllpi_rbudget_conn *next = x->next;
		if (x->listed && x->paused)
			resume_conn(b, x);
		x = next;
	}
}

void mllpi_rbudget_add(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc)
{
	bc->bytes = 0;
	bc->paused = false;
	bc->prev = NULL;
	bc->next = b->head;
	if (b->head)
		b->head->prev = bc;
	b->head = bc;
	bc->listed = true;
	b->n++;
}

void mllpi_rbudget_remove(struct mllpi_rbudget *b,
			  struct mllpi_rbudget_conn *bc)
{
	if (!bc->listed)
		return;
	size_t fair = fair_share(b);
	if (bc->prev)
		bc->prev->next = bc->next;
	else
		b->head = bc->next;
	if (bc->next)
		bc->next->prev = bc->prev;
	bc->listed = false;
	if (bc->paused)
		b->npaused--;
	bc->paused = false;
	b->n--;
	b->total -= bc->bytes;
	bc->bytes = 0;
	publish(b);
	relieve(b);
	if (b->npaused > 0 && fair_share(b) > fair)
		rebalance(b); /* the share grew: who is within it now reads */
}

static struct mllpi_rbudget_conn *heaviest(const struct mllpi_rbudget *b)
{
	struct mllpi_rbudget_conn *h = NULL;
	for (struct mllpi_rbudget_conn *x = b->head; x; x = x->next)
		if (!h || x->bytes > h->bytes)
			h = x;
	return h;
}

void mllpi_rbudget_set(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc,
		       size_t bytes)
{
	if (!bc->listed)
		return;
	b->total = b->total - bc->bytes + bytes;
	bc->bytes = bytes;
	/* Shed first: the published total never exceeds the limit. */
	while (b->total > b->limit) {
		struct mllpi_rbudget_conn *h = heaviest(b);
		if (!h)
			break;
		bump(&b->st_shed);
		b->shed(h);
		mllpi_rbudget_remove(b, h); /* if the hook did not */
	}
	publish(b);
	if (!b->pressure && b->total > b->limit / 4 * 3) {
		b->pressure = true;
		rebalance(b);
	} else if (b->pressure && bc->listed) {
		size_t fair = fair_share(b);
		if (!bc->paused && bc->bytes > fair)
			pause_conn(b, bc);
		else if (bc->paused && bc->bytes <= fair)
			resume_conn(b, bc);
	}
	relieve(b);
}
