/* The receiver's buffer budget (pool/receiver/recv_budget.h) driven
 * through its hooks, without sockets: who is paused, resumed and shed as
 * connections report their bytes and close. */
#include "testutil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "recv_budget.h"

#define KIB   ((size_t)1024)
#define LIMIT ((size_t)4 * 1024 * 1024)
#define NCONN 41

/* Connections and what the hooks saw, per connection. */
static struct mllpi_rbudget_conn conns[NCONN];
static int reads_calls[NCONN];
static int shed_calls[NCONN];
static struct mllpi_rbudget *budget;

static int conn_index(const struct mllpi_rbudget_conn *bc)
{
	return (int)(bc - conns);
}

static void on_reads(struct mllpi_rbudget_conn *bc)
{
	reads_calls[conn_index(bc)]++;
}

/* Closing a connection unlists it, as the receiver's close does. */
static void on_shed(struct mllpi_rbudget_conn *bc)
{
	shed_calls[conn_index(bc)]++;
	mllpi_rbudget_remove(budget, bc);
}

static void setup_conns(struct mllpi_rbudget *b, int n, size_t fair_min)
{
	memset(conns, 0, sizeof(conns));
	memset(reads_calls, 0, sizeof(reads_calls));
	memset(shed_calls, 0, sizeof(shed_calls));
	budget = b;
	mllpi_rbudget_init(b, LIMIT, fair_min, on_reads, on_shed);
	for (int i = 0; i < n; i++)
		mllpi_rbudget_add(b, &conns[i]);
}

/* Two heavy non-readers, thirty-eight light connections and an honest
 * one (index 0) whose kept buffers (66 KiB) are just above the 64 KiB floor
 * of the fair share when the pressure starts: it is paused with the heavy
 * ones. The light ones close; the heavy ones stay paused holding 2.7 MiB,
 * between half the budget and the budget, so no relief comes. The fair
 * share has grown past the honest connection's bytes: it reads again. */
static void test_resumed_when_share_grows(void **state)
{
	(void)state;
	struct mllpi_rbudget b;
	setup_conns(&b, NCONN, 0);
	mllpi_rbudget_set(&b, &conns[0], 66 * KIB);
	mllpi_rbudget_set(&b, &conns[1], 1400 * KIB);
	mllpi_rbudget_set(&b, &conns[2], 1400 * KIB);
	assert_false(b.pressure);
	for (int i = 3; i < NCONN; i++)
		mllpi_rbudget_set(&b, &conns[i], 8 * KIB);
	assert_true(b.pressure);
	assert_true(conns[0].paused);
	assert_int_equal(reads_calls[0], 1);
	for (int i = 3; i < NCONN; i++) {
		assert_false(conns[i].paused);
		mllpi_rbudget_remove(&b, &conns[i]);
	}
	assert_int_equal(b.n, 3);
	assert_int_equal(b.total, 2866 * KIB); /* above LIMIT / 2 */
	assert_true(b.pressure);
	assert_true(conns[1].paused);
	assert_true(conns[2].paused);
	assert_false(conns[0].paused);
	assert_int_equal(reads_calls[0], 2); /* paused, then resumed */
	assert_int_equal(b.npaused, 2);
	assert_int_equal(shed_calls[0], 0);
}

/* Under pressure a connection at or below the fair share is never paused,
 * however often it reports; one that grows above it is, and reads again
 * once its bytes fall back to it. */
static void test_small_never_paused(void **state)
{
	(void)state;
	struct mllpi_rbudget b;
	setup_conns(&b, 4, 0);
	mllpi_rbudget_set(&b, &conns[1], 1600 * KIB);
	mllpi_rbudget_set(&b, &conns[2], 1600 * KIB);
	assert_true(b.pressure); /* 3.1 MiB > 3/4 of 4 MiB */
	assert_true(conns[1].paused);
	assert_true(conns[2].paused);
	size_t fair = LIMIT / (2 * 4); /* 512 KiB */
	for (size_t v = 0; v <= fair; v += 64 * KIB) {
		mllpi_rbudget_set(&b, &conns[0], v);
		assert_false(conns[0].paused);
	}
	assert_int_equal(reads_calls[0], 0);
	mllpi_rbudget_set(&b, &conns[0], 0);
	mllpi_rbudget_set(&b, &conns[3], fair + 1);
	assert_true(conns[3].paused);
	mllpi_rbudget_set(&b, &conns[3], fair);
	assert_false(conns[3].paused);
	assert_int_equal(reads_calls[3], 2);
	assert_int_equal(shed_calls[0] + shed_calls[3], 0);
}

/* Above the budget the heaviest go first, until the total fits: the
 * published total and peak never exceed it; the small connection that
 * pushed it over is kept. Below half the budget every paused one reads
 * again. */
static void test_shed_heaviest_then_relief(void **state)
{
	(void)state;
	struct mllpi_rbudget b;
	setup_conns(&b, 4, 0);
	mllpi_rbudget_set(&b, &conns[1], 2048 * KIB);
	mllpi_rbudget_set(&b, &conns[2], 1536 * KIB);
	mllpi_rbudget_set(&b, &conns[3], 512 * KIB);
	mllpi_rbudget_set(&b, &conns[0], 8 * KIB); /* 4104 KiB: over */
	assert_int_equal(shed_calls[1], 1);
	assert_int_equal(shed_calls[0] + shed_calls[2] + shed_calls[3], 0);
	assert_false(conns[1].listed);
	assert_int_equal(b.total, 2056 * KIB);
	assert_true(atomic_load(&b.st_peak) <= LIMIT);
	assert_int_equal(atomic_load(&b.st_shed), 1);
	assert_true(conns[2].paused);
	mllpi_rbudget_remove(&b, &conns[2]); /* 520 KiB: relief */
	assert_false(b.pressure);
	assert_int_equal(b.npaused, 0);
	assert_false(conns[3].paused);
	assert_false(conns[0].paused);
	assert_int_equal(atomic_load(&b.st_total), 520 * KIB);
}

/* The fair share's floor covers what a connection at rest keeps: with 41
 * connections the share would be 51 KiB, but one keeping 250 KiB of
 * buffers (under a 256 KiB floor) is not paused; one above it is. */
static void test_floor_covers_kept_buffers(void **state)
{
	(void)state;
	struct mllpi_rbudget b;
	setup_conns(&b, NCONN, 256 * KIB);
	assert_int_equal(b.fair_min, 256 * KIB);
	mllpi_rbudget_set(&b, &conns[0], 250 * KIB);
	mllpi_rbudget_set(&b, &conns[1], 1500 * KIB);
	mllpi_rbudget_set(&b, &conns[2], 1500 * KIB);
	assert_true(b.pressure);
	assert_false(conns[0].paused);
	assert_true(conns[1].paused);
	mllpi_rbudget_set(&b, &conns[0], 257 * KIB);
	assert_true(conns[0].paused);
	/* A floor below the built-in minimum is raised to it. */
	setup_conns(&b, 1, 1);
	assert_int_equal(b.fair_min, MLLPI_RBUDGET_FAIR_MIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resumed_when_share_grows),
	    cmocka_unit_test(test_small_never_paused),
	    cmocka_unit_test(test_shed_heaviest_then_relief),
	    cmocka_unit_test(test_floor_covers_kept_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
