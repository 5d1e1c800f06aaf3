/* The producer's send path: checks, payload parsing, the queue slot
 * (blocking when full), the future, the hand-over to the manager. */
#include "app_ack.h"
#include "conn.h"
#include "endpoint.h"
#include "reserved.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <mllp/hl7.h>

/* Take a queue slot. */
static bool try_reserve(struct mllpi_endpoint *ep, uint32_t cap)
{
	/* seq_cst: Dekker pair with mllpi_space_freed (see there). */
	uint32_t cur =
	    atomic_load_explicit(&ep->reserved, memory_order_seq_cst);
	while (cur < cap) {
		if (atomic_compare_exchange_weak_explicit(
			&ep->reserved, &cur, cur + 1, memory_order_seq_cst,
			memory_order_seq_cst))
			return true;
	}
	return false;
}

static int reserve_slot(struct mllp_pool *pool, struct mllpi_endpoint *ep,
			const struct mllp_send_options *o)
{
	uint32_t cap = pool->cfg.queue_capacity;
	if (try_reserve(ep, cap))
		return 0;
	if (!o->block || o->block_timeout_ms == 0)
		return MLLP_ERR_WOULD_BLOCK;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	if (o->block_timeout_ms > 0) {
		dl.tv_sec += o->block_timeout_ms / 1000;
		dl.tv_nsec += (o->block_timeout_ms % 1000) * 1000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
	}
	int rc = 0;
	pthread_mutex_lock(&ep->mu);
	atomic_fetch_add_explicit(&ep->space_waiters, 1, memory_order_seq_cst);
	while (!try_reserve(ep, cap)) {
		if (atomic_load_explicit(&pool->q.stopped,
					 memory_order_seq_cst)) {
			rc = MLLP_ERR_STOPPED;
			break;
		}
		/* seq_cst: see mllp_pool_remove_endpoint. */
		if (atomic_load_explicit(&ep->removing, memory_order_seq_cst)) {
			rc = MLLP_ERR_ENDPOINT_REMOVED;
			break;
		}
		if (o->block_timeout_ms < 0) {
			pthread_cond_wait(&ep->cv, &ep->mu);
		} else if (pthread_cond_timedwait(&ep->cv, &ep->mu, &dl) ==
			   ETIMEDOUT) {
			if (!try_reserve(ep, cap))
				rc = MLLP_ERR_WOULD_BLOCK;
			break;
		}
	}
	atomic_fetch_sub_explicit(&ep->space_waiters, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&ep->mu);
	return rc;
}

/* The checks before anything is taken: arguments, a blocking send from a
 * callback, a stopped pool. */
static int send_check(const struct mllp_pool *pool, const void *payload,
		      size_t len, const struct mllp_send_options *o,
		      struct mllp_future **out, struct mllp_error *err)
{
	if (!out || (!payload && len)) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	int rc =
	    MLLPI_CHECK_RESERVED(o, "mllp_send_options", MLLP_CTX_SEND, err);
	if (rc != 0)
		return rc;
	if ((unsigned)o->notify > MLLP_NOTIFY_FD) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_INVALID_ARGUMENT,
			       "unknown notify value");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (o->block && o->block_timeout_ms != 0 &&
	    mllpi_pool_on_manager(pool)) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_INVALID_ARGUMENT,
			       "a blocking send from a callback would wait "
			       "for the manager thread it runs on");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	/* acquire: early refusal only (see mllpi_pool_push). */
	if (atomic_load_explicit(&pool->q.stopped, memory_order_acquire)) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	return 0;
}

/* Parse on the producer's thread (the manager only parses replies):
 * *framed when the payload is an MLLP frame already, *hl7 (with msg)
 * when it is HL7 with an MSH-10 control id. */
static int parse_payload(const void *payload, size_t len,
			 const struct mllp_send_options *o, bool *framed,
			 bool *hl7, struct mllp_hl7_msg *msg,
			 struct mllp_error *err)
{
	int wc = mllp_wrap_check(NULL, payload, len);
	if (wc < 0) {
		mllp_error_set(err, MLLP_CTX_SEND, wc, NULL);
		return wc;
	}
	*framed = wc == 1;
	const unsigned char *body = payload;
	size_t body_len = len;
	if (*framed) {
		body++;
		body_len -= 3;
	}
	*hl7 = false;
	if (o->kind != MLLP_PAYLOAD_RAW) {
		int prc = mllp_hl7_parse(msg, body, body_len);
		if (prc == 0 && msg->control_id.len > 0)
			*hl7 = true;
		else if (o->kind == MLLP_PAYLOAD_HL7) {
			int r = prc ? prc : MLLP_ERR_BAD_MSH;
			mllp_error_set(
			    err, MLLP_CTX_SEND, r,
			    prc ? NULL : "message has no MSH-10 control id");
			return r;
		}
	}
	return 0;
}

/* Fail fast while every connection is down (queue_timeout 0): the last
 * connect error, and a kick to connect now. 0 when not down. */
static int fail_fast(struct mllp_pool *pool, struct mllpi_endpoint *ep,
		     struct mllp_error *err)
{
	if (ep->opts.queue_timeout_ms != 0 ||
	    atomic_load_explicit(&ep->usable, memory_order_seq_cst) != 0)
		return 0;
	struct mllp_error e;
	mllpi_get_last_error(ep, &e);
	mllp_error_set(err, MLLP_CTX_SEND, e.reason, "%s", e.message);
	/* seq_cst exchange: one kick node in the queue at a time; the
	 * manager clears the flag before acting. */
	if (!atomic_exchange_explicit(&ep->kick_pending, true,
				      memory_order_seq_cst))
		if (mllpi_pool_push(pool, &ep->kick_node) != 0)
			atomic_store(&ep->kick_pending, false);
	return e.reason;
}

/* The future of a message (its slot taken), the payload copied into it
 * unless borrowed; *size its allocation. NULL: no memory. */
static struct mllp_future *
future_new(struct mllp_pool *pool, struct mllpi_endpoint *ep,
	   const void *payload, size_t len, bool framed, bool hl7,
	   const struct mllp_hl7_msg *msg, const struct mllp_send_options *o,
	   const unsigned char *key, size_t key_len, size_t *size)
{
	/* A copied payload is stored framed (SB payload EB CR) so that it
	 * goes out as one buffer: one plain send instead of a gather of
	 * three iovecs. Small borrowed payloads are copied too: copying a
	 * few hundred bytes costs less than the kernel's iovec import. */
	bool copy = !o->borrow_payload || (!framed && len <= MLLPI_SMALL_COPY);
	bool wrap = copy && !framed;
	size_t extra = copy ? len + (wrap ? 3 : 0) : 0;
	*size = sizeof(struct mllp_future) + extra + key_len;
	struct mllp_future *f = pool->alloc.alloc(pool->alloc.ctx, *size);
	if (!f)
		return NULL;
	/* The producer's part only; the manager initialises the rest when
	 * it takes the message (op_send, pool_manager.c): those lines were last
	 * written by the manager (the previous future at this address), so they
	 * stay in its cache instead of crossing to this thread and back. */
	memset(f, 0, offsetof(struct mllp_future, where));
	f->alloc = pool->alloc;
	f->alloc_size = *size;
	f->pool = pool;
	f->ep = ep;
	f->node.kind = MLLPI_OP_SEND;
	f->cancel_node.kind = MLLPI_OP_CANCEL;
	/* caller + engine (+ the harvest list: completion_fd.c) */
	f->notify_fd = o->notify == MLLP_NOTIFY_FD;
	atomic_init(&f->refs, f->notify_fd ? 3 : 2);
	const unsigned char *pl = payload;
	size_t pl_len = len, shift = 0;
	if (copy) {
		unsigned char *dst = (unsigned char *)(f + 1);
		if (wrap) {
			dst[0] = MLLP_SB;
			shift = 1;
		}
		if (len)
			memcpy(dst + shift, payload, len);
		if (wrap) {
			dst[len + 1] = MLLP_EB;
			dst[len + 2] = MLLP_CR;
			pl_len = len + 3;
		}
		pl = dst;
	}
	f->payload = pl;
	f->len = pl_len;
	f->framed = framed || wrap;
	f->hl7 = hl7;
	if (hl7) {
		f->control_id = (const char *)pl + shift +
				(msg->control_id.ptr - (const char *)payload);
		f->control_id_len = msg->control_id.len;
		/* MSH-15 as the producer's parse found it: NE or ER ask for
		 * no accept ACK on success (release 2 still waits for the
		 * commit ACK). */
		f->no_accept = msg->accept_ack_type.len == 2 &&
			       ep->opts.mllp_release != 2 &&
			       (mllp_str_eq(msg->accept_ack_type, "NE") ||
				mllp_str_eq(msg->accept_ack_type, "ER"));
	}
	if (key_len) {
		/* after the payload copy (extra bytes) */
		unsigned char *k = (unsigned char *)(f + 1) + extra;
		memcpy(k, key, key_len);
		f->key = k;
		f->key_len = (uint32_t)key_len;
		f->key_hash = mllpi_key_hash(k, key_len);
	}
	f->reply_timeout = o->reply_timeout_ms;
	f->async = o->async;
	f->cb = o->callback;
	f->cb_arg = o->callback_arg;
	/* enhanced mode: MSH-16 asks for an application ACK (app_listen.c) */
	if (hl7 && msg->app_ack_type.len && !mllpi_app_attach(pool, f, msg)) {
		pool->alloc.free(pool->alloc.ctx, f, *size);
		return NULL;
	}
	return f;
}

struct mllp_future *mllpi_future_copy(const struct mllp_future *f)
{
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.reply_timeout_ms = f->reply_timeout;
	/* The control id is a view into f->payload: future_new re-bases it
	 * onto the copy. */
	struct mllp_hl7_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.control_id.ptr = f->control_id;
	msg.control_id.len = f->control_id_len;
	size_t size;
	struct mllp_future *g =
	    future_new(f->pool, f->ep, f->payload, f->len, f->framed, f->hl7,
		       &msg, &o, f->key, f->key_len, &size);
	if (g)
		g->no_accept = f->no_accept;
	return g;
}

/* mllp_pool_send inside endpoint ep (entered). */
static int send_on(struct mllp_pool *pool, struct mllpi_endpoint *ep,
		   const void *payload, size_t len,
		   const struct mllp_send_options *opts,
		   struct mllp_future **out, struct mllp_error *err)
{
	struct mllp_send_options o;
	if (opts)
		o = *opts;
	else
		mllp_send_options_init(&o);
	int rc = send_check(pool, payload, len, &o, out, err);
	if (rc != 0)
		return rc;
	bool framed, hl7;
	struct mllp_hl7_msg msg;
	rc = parse_payload(payload, len, &o, &framed, &hl7, &msg, err);
	if (rc != 0)
		return rc;
	const unsigned char *key;
	size_t key_len;
	rc = mllpi_send_key(&o, &msg, hl7, &key, &key_len, err);
	if (rc != 0)
		return rc;
	rc = fail_fast(pool, ep, err);
	if (rc != 0)
		return rc;
	rc = reserve_slot(pool, ep, &o);
	if (rc != 0) {
		mllp_error_set(err, MLLP_CTX_SEND, rc, NULL);
		return rc;
	}
	size_t size;
	struct mllp_future *f = future_new(pool, ep, payload, len, framed, hl7,
					   &msg, &o, key, key_len, &size);
	if (!f) {
		/* give the slot back (seq_cst as every reserved update) */
		atomic_fetch_sub_explicit(&ep->reserved, 1,
					  memory_order_seq_cst);
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	rc = mllpi_pool_push(pool, &f->node);
	if (rc != 0) {
		atomic_fetch_sub_explicit(&ep->reserved, 1,
					  memory_order_seq_cst);
		if (f->app)
			mllpi_app_free(f);
		pool->alloc.free(pool->alloc.ctx, f, size);
		mllp_error_set(err, MLLP_CTX_SEND, rc, NULL);
		return rc;
	}
	*out = f;
	return 0;
}

int mllp_pool_send(struct mllp_pool *pool, uint32_t endpoint_id,
		   const void *payload, size_t len,
		   const struct mllp_send_options *opts,
		   struct mllp_future **out, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (out)
		*out = NULL;
	struct mllpi_endpoint *ep;
	int rc =
	    mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_SEND, &ep, err);
	if (rc != 0)
		return rc;
	rc = send_on(pool, ep, payload, len, opts, out, err);
	mllpi_endpoint_leave(pool, endpoint_id);
	return rc;
}
