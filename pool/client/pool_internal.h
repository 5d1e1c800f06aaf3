/* Internal: the pool engine's data structures (manager side and producer
 * side). Not installed. */
#ifndef MLLPI_POOL_INTERNAL_H
#define MLLPI_POOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <mllp/ack.h>
#include <mllp/backoff.h>
#include <mllp/framer.h>
#include <mllp/pool.h>
#include <mllp/tls.h>

#include "alloc.h"
#include "backend.h"
#include "completion_fd.h"
#include "lane.h"
#include "latency.h"
#include "loop.h"
#include "subq.h"
#include "timer.h"

/* The struct of type `type` whose member `member` is at ptr. */
#define MLLPI_CONTAINER_OF(ptr, type, member)                                  \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define MLLPI_MAX_ENDPOINTS 1024
#define MLLPI_MAX_ADDRS	    8
#define MLLPI_INLINE_REPLY  512
/* Borrowed payloads up to this size are copied (framed) into the future:
 * one send buffer instead of three iovecs. */
#define MLLPI_SMALL_COPY 512
/* Control ids a connection remembers to recognise resent ACKs
 * (conn_stale.c). */
#define MLLPI_STALE_IDS 256

enum mllpi_op {
	MLLPI_OP_SEND = 1,  /* node of a future */
	MLLPI_OP_CANCEL,    /* cancel_node of a future */
	MLLPI_OP_ADD,	    /* add_node of an endpoint */
	MLLPI_OP_KICK,	    /* kick_node: connect down connections now */
	MLLPI_OP_RECONNECT, /* reconnect_node: close and reconnect all */
	MLLPI_OP_STOP,	    /* the pool's stop_node */
	MLLPI_OP_REMOVE,    /* remove_node: endpoint_remove.c */
	MLLPI_OP_REMOVED,   /* removed_node: endpoint_remove.c */
	MLLPI_OP_RELEASE,   /* a lane release request (lane.c) */
	MLLPI_OP_APP_ACK,   /* a frame of the ack listener (app_track.c) */
};

/* W_PARKED: waiting behind an earlier message of its key, or for its
 * lane's retry (lane.c). */
enum mllpi_where { W_NEW = 0, W_QUEUED, W_INFLIGHT, W_DONE, W_PARKED };

struct mllpi_endpoint;
struct mllpi_conn;
struct mllpi_app;
struct mllpi_acks;

struct mllp_future {
	struct mllpi_node node;
	struct mllpi_node cancel_node;
	/* 0 pending, 1 complete: also the futex word. */
	_Atomic uint32_t state;
	_Atomic uint32_t waiters;
	_Atomic int refs;
	_Atomic bool cancel_requested;
	struct mllp_allocator alloc;
	size_t alloc_size;
	struct mllp_pool *pool;
	struct mllpi_endpoint *ep;
	/* the message */
	const unsigned char *payload;
	size_t len;
	bool framed; /* payload is already an MLLP frame */
	bool hl7;
	const char *control_id; /* view into payload (HL7) */
	size_t control_id_len;
	/* HL7 whose MSH-15 is NE or ER (release 1): no accept ACK is awaited,
	 * the message completes when written (mllpi_accept_written). */
	bool no_accept;
	int64_t reply_timeout; /* ms, 0 default, MLLP_INFINITE */
	bool async;
	mllp_future_cb cb;
	void *cb_arg;
	bool notify_fd; /* MLLP_NOTIFY_FD: onto pool->cfd once complete */
	/* Ordering key (lane.c): key_len bytes at key (in this allocation,
	 * after the payload), key_hash their hash; key_len 0: unkeyed. */
	const unsigned char *key;
	uint32_t key_len;
	uint32_t key_hash;
	/* Enhanced mode's application stage (app_ack.h), or NULL. */
	struct mllpi_app *app;
	/* Manager only, zeroed by the producer: op_send (pool_manager.c) has
	 * run; a cancel came before it (failed as canceled when the send
	 * comes). */
	bool taken;
	bool cancel_first;
	/* manager side, from here on: initialised by op_send, not by the
	 * producer */
	enum mllpi_where where;
	bool completed;	    /* manager's view: result already set */
	bool left_flight;   /* no longer counted in st_in_flight */
	uint64_t queued_us; /* when it entered the endpoint queue */
	struct mllp_future *qprev, *qnext;
	/* Its lane (lane.c) while it is the lane's message or waits in it;
	 * lnext: the next waiting one; tries: attempts so far. */
	struct mllpi_lane *lane;
	struct mllp_future *lnext;
	uint32_t tries;
	/* In a connection's window (conn_window.c; qprev/qnext then link the
	 * window): when its send was queued, its reply deadline (0: none),
	 * how far it is written (enum mllpi_wstate), a reply kept until it is
	 * written, and whether it is one of the two messages of the probe. */
	uint64_t w_start_us;
	uint64_t w_due_us;
	uint8_t w_state;
	bool w_early;
	bool w_probe;
	struct mllp_result result;
	unsigned char *reply_heap;
	size_t reply_heap_size;
	unsigned char reply_inline[MLLPI_INLINE_REPLY];
	/* link in pool->cfd's list once complete (notify_fd) */
	struct mllpi_node done_node;
};

/* One socket's life; freed when closed and no operation is outstanding,
 * at the end of the manager's turn (never inside a completion handler:
 * callers up the stack still compare c->sock with it, and a socket
 * allocated meanwhile must not get its address). Completion tokens are
 * (sock pointer | op). */
struct mllpi_sock {
	struct mllpi_conn *conn; /* NULL once detached (closing) */
	int fd;
	int pending; /* operations outstanding in the backend */
	/* of them, measures of the bytes waiting (TOK_INQ, conn_presend.c) */
	int inq_out;
	bool abortive;
	bool dead; /* on p->dead, freed at the end of the turn */
	struct mllpi_sock *dead_next;
	struct mllpi_sock *all_prev, *all_next; /* p->socks */
	struct mllpi_tls_stream *tls; /* TLS (tls_stream.h), NULL: plaintext */
	struct mllpi_endpoint *ep;    /* counted in ep->socks until freed */
};

enum mllpi_cstate { C_DOWN = 0, C_CONNECTING, C_IDLE, C_BUSY };
enum mllpi_tkind {
	T_NONE = 0,
	T_CONNECT,
	T_SEND,
	T_REPLY,
	T_BACKOFF,
	T_QUEUE,
	T_LANE, /* an endpoint's lane retries (lane.c) */
	T_APP,	/* application ACK timeouts (app_track.c) */
};

/* Size of the control id kept for the HL7 ACK that follows a commit ACK
 * (conn_r2.c); a longer id is not matched. */
#define MLLPI_R2_ID_MAX 64

/* MLLP release 2 state of a connection (conn_r2.c). Commit answers come
 * in the order of the attempts they answer: `prior` attempts of messages
 * already done are still unanswered (their answers are dropped as stale),
 * then `owed` attempts of the message in flight. The last committed
 * message's control id waits for its HL7 ACK. */
struct mllpi_r2 {
	uint32_t attempts; /* of the message in flight, sent so far */
	uint32_t owed;	   /* ... not answered yet */
	uint32_t prior;	   /* attempts of done messages not answered yet */
	bool last_pending; /* the last committed message awaits its ACK */
	bool last_hl7;
	uint64_t last_start_us; /* when its last attempt was sent */
	size_t last_id_len;
	char last_id[MLLPI_R2_ID_MAX];
};

struct mllpi_conn {
	struct mllpi_endpoint *ep;
	uint32_t id;
	enum mllpi_cstate state;
	_Atomic bool connected_pub; /* published for is_connected */
	struct mllpi_sock *sock;
	struct mllp_backoff backoff;
	bool first_attempt_done;
	/* A reply arrived on this socket (or a reconnect was asked for): a
	 * close may reconnect at once; otherwise it waits the backoff delay. */
	bool proven;
	uint32_t attempts;
	int addr_idx;
	int addr_tries; /* addresses tried in this connect round */
	struct mllpi_timer timer;
	uint64_t due_us; /* real deadline of a lazy T_SEND/T_REPLY timer */
	uint64_t connect_start_us;
	/* message in flight */
	struct mllp_future *cur;
	bool send_in_flight;
	bool send_done;	 /* every byte written */
	bool reply_done; /* reply handled before send completion */
	/* A reply came before the last byte was written: kept in the future
	 * (store_reply) and handled when the send completes. */
	bool early_reply;
	size_t sent, total;
	struct iovec iov_full[3];
	int iov_full_n;
	struct iovec iov[3];
	struct msghdr msg;
	uint64_t send_start_us;
	bool recv_armed;
	struct mllp_decoder dec;
	/* TLS session of the last connection, offered on reconnect. */
	struct mllp_tls_session *tls_sess;
	struct mllpi_conn *idle_next;
	bool in_idle;
	/* Early bytes (conn_presend.c): the manager turn in which the message
	 * in flight was queued for sending, the bytes that were waiting in
	 * the socket before it was handed to the kernel, and whether the frame
	 * being decoded holds such bytes. fresh_next: p->fresh list. */
	uint64_t send_turn;
	size_t presend;
	bool presend_taint;
	bool in_fresh;
	struct mllpi_conn *fresh_next;
	/* Control ids answered on this socket (conn_stale.c), or NULL. */
	struct mllpi_stale *stale;
	/* MLLP release 2 commit answers on this socket (conn_r2.c). */
	struct mllpi_r2 r2;
	/* The window of an endpoint with max_inflight other than 1
	 * (conn_window.c), or NULL: then cur is the one message in flight. */
	struct mllpi_window *win;
};

/* Counters of a pool and of each endpoint (same names in both, see
 * STAT_ADD in conn.h); relaxed atomics: statistics only. */
#define MLLPI_COUNTERS                                                         \
	_Atomic uint64_t st_sent, st_acked[MLLP_VERDICT_COUNT], st_raw,        \
	    st_errors, st_errors_os, st_errors_mllp[MLLP_STATS_MLLP_ERRORS],   \
	    st_connects, st_reconnects, st_connect_failures, st_in_flight,     \
	    st_queued, st_tls_handshakes, st_tls_resumed, st_stale,            \
	    st_lanes_active, st_lanes_held, st_lane_waiting,                   \
	    st_lane_held_waiting, st_late_accept

/* Copy the counters of MLLPI_COUNTERS from *src (a pool or an endpoint)
 * into *dst (struct mllp_pool_stats or mllp_endpoint_stats: same names);
 * relaxed: statistics, each counter on its own. */
#define MLLPI_LOAD_COUNTERS(dst, src)                                          \
	do {                                                                   \
		(dst)->sent = MLLPI_LD((src)->st_sent);                        \
		for (int i_ = 0; i_ < MLLP_VERDICT_COUNT; i_++)                \
			(dst)->acked[i_] = MLLPI_LD((src)->st_acked[i_]);      \
		(dst)->raw_replies = MLLPI_LD((src)->st_raw);                  \
		(dst)->errors = MLLPI_LD((src)->st_errors);                    \
		(dst)->errors_os = MLLPI_LD((src)->st_errors_os);              \
		for (int i_ = 0; i_ < MLLP_STATS_MLLP_ERRORS; i_++)            \
			(dst)->errors_mllp[i_] =                               \
			    MLLPI_LD((src)->st_errors_mllp[i_]);               \
		(dst)->connects = MLLPI_LD((src)->st_connects);                \
		(dst)->reconnects = MLLPI_LD((src)->st_reconnects);            \
		(dst)->connect_failures =                                      \
		    MLLPI_LD((src)->st_connect_failures);                      \
		(dst)->in_flight = MLLPI_LD((src)->st_in_flight);              \
		(dst)->queued = MLLPI_LD((src)->st_queued);                    \
		(dst)->tls_handshakes = MLLPI_LD((src)->st_tls_handshakes);    \
		(dst)->tls_resumed = MLLPI_LD((src)->st_tls_resumed);          \
		(dst)->stale_replies = MLLPI_LD((src)->st_stale);              \
		(dst)->lanes_active = MLLPI_LD((src)->st_lanes_active);        \
		(dst)->lanes_held = MLLPI_LD((src)->st_lanes_held);            \
		(dst)->lane_waiting = MLLPI_LD((src)->st_lane_waiting);        \
		(dst)->lane_held_waiting =                                     \
		    MLLPI_LD((src)->st_lane_held_waiting);                     \
		(dst)->late_accept_acks = MLLPI_LD((src)->st_late_accept);     \
	} while (0)
#define MLLPI_LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

struct mllpi_remove_wait;

struct mllpi_endpoint {
	struct mllpi_node add_node;
	struct mllpi_node kick_node;
	struct mllpi_node reconnect_node;
	_Atomic bool kick_pending;
	_Atomic bool reconnect_pending;
	struct mllp_pool *pool;
	uint32_t id;
	char host[MLLP_HOST_MAX];
	uint16_t port;
	struct sockaddr_storage addrs[MLLPI_MAX_ADDRS];
	socklen_t addrlens[MLLPI_MAX_ADDRS];
	int naddrs;
	struct mllp_conn_options opts;
	uint32_t nconns;
	struct mllpi_conn *conns;
	/* producer-visible */
	_Atomic uint32_t reserved; /* queue slots taken (not yet on a conn) */
	_Atomic uint32_t usable;   /* connections connecting or up */
	_Atomic uint32_t connected;
	_Atomic uint32_t space_waiters;
	pthread_mutex_t mu; /* guards last_error, first_done; cv waits */
	pthread_cond_t cv;
	struct mllp_error last_error;
	uint32_t first_done;
	/* manager side */
	struct mllp_future *qhead, *qtail;
	struct mllpi_timer qtimer;
	struct mllpi_conn *idle;
	/* slots of messages moved onto a connection this turn
	 * (mllpi_slot_moved) */
	uint32_t moved;
	struct mllpi_endpoint *moved_next;
	bool added;
	/* TLS context (NULL: plaintext), built at add_endpoint. */
	struct mllp_tls_ctx *tls_ctx;
	/* Ordered lanes of the endpoint (lane.h). */
	struct mllpi_lanes lanes;
	/* max_inflight MLLP_INFLIGHT_AUTO: where the probe stands (enum
	 * mllpi_probe, conn_window.c). */
	uint8_t probe;
	/* Removal (endpoint_remove.c). removing: set by the remover before
	 * it waits for the producers to leave (blocked ones give up). The
	 * rest is the manager's: retired once removal began, removed_seen
	 * when every node naming the endpoint was handled, socks still open,
	 * the remover to wake when both are done. */
	_Atomic bool removing;
	struct mllpi_node remove_node;
	struct mllpi_node removed_node;
	bool retired;
	bool removed_seen;
	uint32_t socks;
	struct mllpi_remove_wait *remove_wait;
	/* Per-endpoint counters (written by the manager only) and the last
	 * error seen (guarded by mu). */
	MLLPI_COUNTERS;
	struct mllp_error stat_error;
};

enum mllpi_slot_state {
	MLLPI_SLOT_EMPTY = 0, /* never used */
	MLLPI_SLOT_LIVE,
	MLLPI_SLOT_REMOVING,
	MLLPI_SLOT_REMOVED, /* free for reuse; sends say "endpoint removed" */
};

/* One endpoint id (endpoint.h). `ep` is the published endpoint (NULL
 * while free or being removed); `users` counts the threads between
 * mllpi_endpoint_enter() and _leave() on this id (the remover waits for
 * zero before the endpoint may be freed); `state` is an enum
 * mllpi_slot_state; `owned` the endpoint the slot owns until it is freed
 * (under add_mu). Padded to a cache line: producers of different
 * endpoints do not share one. */
struct mllpi_ep_slot {
	_Atomic(struct mllpi_endpoint *) ep;
	_Atomic uint32_t users;
	_Atomic int state;
	struct mllpi_endpoint *owned;
	char pad_[64 - 2 * sizeof(void *) - 2 * sizeof(uint32_t)];
};

struct mllp_pool {
	struct mllp_pool_config cfg;
	struct mllp_allocator alloc;
	/* The manager thread, its backend and timers (loop.h). now_us is
	 * refreshed after every wait() and after a batch of queued
	 * operations: one clock read per turn, not per message. turn counts
	 * the wait() calls (conn_presend.c). */
	struct mllpi_loop loop;
	/* stop and join: one caller at a time */
	pthread_mutex_t mu;
	/* producers → manager (subq.h) */
	struct mllpi_subq q;
	struct mllpi_node stop_node;
	bool joined;
	pthread_mutex_t add_mu;
	struct mllpi_ep_slot slots[MLLPI_MAX_ENDPOINTS];
	_Atomic uint32_t neps; /* slots ever used (high-water mark) */
	/* manager side */
	bool batch_full; /* the last turn stopped taking work at its cap */
	/* connections that queued the first send of a message this turn
	 * (conn_presend.c) */
	struct mllpi_conn *fresh;
	/* the backend cannot measure with the send (conn_presend.c) */
	bool inq_unsupported;
	struct mllpi_endpoint *moved_list; /* endpoints with moved > 0 */
	/* connections whose window has frames to write (conn_window.c) */
	struct mllpi_conn *wflush;
	bool stopping;
	/* Set when the backend's wait failed for good: the manager stopped
	 * and failed every message with it (reason: the wait's error). */
	struct mllp_error fatal;
	/* Sockets not yet freed (all_next), those to free at the end of the
	 * turn (dead_next). */
	struct mllpi_sock *socks, *dead;
	uint32_t live_socks;
	size_t timer_slots;
	/* counters (relaxed atomics: statistics only) */
	MLLPI_COUNTERS;
	struct mllpi_latency lat; /* reply latency (latency.h) */
	/* completed MLLP_NOTIFY_FD futures for the host (completion_fd.h) */
	struct mllpi_cfd cfd;
	/* the ack listener (app_ack.h), or NULL; set once */
	_Atomic(struct mllpi_acks *) acks;
};

/* mllp_pool_create on the given backend (NULL: as cfg->backend says); for
 * tests that wrap or fake the backend seam. */
int mllpi_pool_create_ops(const struct mllp_pool_config *cfg,
			  const struct mllpi_backend_ops *ops,
			  struct mllp_pool **out, struct mllp_error *err);

/* Wait until every connection of the endpoint has finished its first
 * connect attempt, or timeout_ms passes (or the endpoint is removed). Used
 * by mllp_client_create. */
void mllpi_endpoint_wait_first(struct mllp_pool *pool, uint32_t ep,
			       int64_t timeout_ms);

/* Hand a node to the manager (pool_manager.c): 0 or MLLP_ERR_STOPPED. */
int mllpi_pool_push(struct mllp_pool *pool, struct mllpi_node *n);
/* True on the pool's manager thread (inside a callback of the pool). */
bool mllpi_pool_on_manager(const struct mllp_pool *pool);
/* MLLP release 2 options (conn_r2.c): 0, or MLLP_ERR_INVALID_ARGUMENT
 * with err set (mllp_release not 0..2; release 2 with max_inflight > 1). */
int mllpi_r2_check_options(const struct mllp_conn_options *o,
			   struct mllp_error *err);
/* Early bytes (conn_presend.c), manager thread. _start: the first send of
 * c->cur was queued; _measure: right before wait(), note the bytes already
 * waiting in those sockets; _take: how many of the len bytes being
 * delivered to c arrived before c->cur was handed to the kernel; _forget:
 * the decoder was reset or the socket closed. */
void mllpi_presend_start(struct mllpi_conn *c);
void mllpi_presend_measure(struct mllp_pool *p);
size_t mllpi_presend_take(struct mllpi_conn *c, size_t len);
void mllpi_presend_forget(struct mllpi_conn *c);
/* Submit the first send of an attempt (c->msg), measured by the backend
 * when it can (sendmsg_inq), else plainly: 0 or the backend's error. */
int mllpi_presend_send(struct mllpi_conn *c, uint64_t token,
		       uint64_t inq_token);
/* The backend's measure on s (a TOK_INQ completion): res bytes waiting,
 * or -errno; c: s's connection, or NULL. */
void mllpi_presend_on_inq(struct mllpi_sock *s, struct mllpi_conn *c, int res);
/* Futures, manager side (future.c). */
void mllpi_future_publish(struct mllp_future *f);
void mllpi_future_release(struct mllp_future *f);
/* Wait until *state is 1 (a future's or a stage's futex word, waiters its
 * waiter count): 0, or MLLP_ERR_TIMEOUT; wake its waiters. */
int mllpi_wait_state(_Atomic uint32_t *state, _Atomic uint32_t *waiters,
		     int64_t timeout_ms);
void mllpi_wake_state(_Atomic uint32_t *state);

#endif
