/* The receiver-wide budget of buffered bytes (see recv_budget.h). */
#include "recv_budget.h"

void mllpi_rbudget_init(struct mllpi_rbudget *b, size_t limit,
			void (*reads)(struct mllpi_rbudget_conn *),
			void (*shed)(struct mllpi_rbudget_conn *))
{
	b->limit = limit;
	b->total = 0;
	b->n = 0;
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
	return f < MLLPI_RBUDGET_FAIR_MIN ? MLLPI_RBUDGET_FAIR_MIN : f;
}

static void pause_conn(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc)
{
	bc->paused = true;
	bump(&b->st_pauses);
	b->reads(bc);
}

/* Below half the limit: every paused connection reads again. */
static void relieve(struct mllpi_rbudget *b)
{
	if (!b->pressure || b->total >= b->limit / 2)
		return;
	b->pressure = false;
	for (struct mllpi_rbudget_conn *x = b->head; x; x = x->next) {
		if (x->paused) {
			x->paused = false;
			b->reads(x);
		}
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
	if (bc->prev)
		bc->prev->next = bc->next;
	else
		b->head = bc->next;
	if (bc->next)
		bc->next->prev = bc->prev;
	bc->listed = false;
	bc->paused = false;
	b->n--;
	b->total -= bc->bytes;
	bc->bytes = 0;
	publish(b);
	relieve(b);
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
		size_t fair = fair_share(b);
		for (struct mllpi_rbudget_conn *x = b->head; x; x = x->next)
			if (!x->paused && x->bytes > fair)
				pause_conn(b, x);
	} else if (b->pressure && bc->listed && !bc->paused &&
		   bc->bytes > fair_share(b)) {
		pause_conn(b, bc);
	}
	relieve(b);
}
