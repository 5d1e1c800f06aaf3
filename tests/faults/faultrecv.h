/* A fault-injection MLLP receiver for the reliability suite: plain
 * sockets, 127.0.0.1, ephemeral port, one poll-driven thread.
 *
 * Faults are selectable and combinable: each has a probability (parts per
 * million) and an optional limit (how many times it may fire; 0 means no
 * limit). Connection faults are drawn when a connection is accepted,
 * message faults when a complete frame has been read, in the order of
 * enum fr_fault; the first that fires wins. The random generator is seeded
 * (fr_config.seed), so a run's choices depend only on the order in which
 * connections and messages arrive.
 *
 * Listener faults are actions: fr_listen(false) closes the listener
 * (connections are refused), fr_restart() closes everything and listens
 * again on the same port, fr_pause_accept() stops accepting (with a small
 * backlog the kernel's accept queue fills: slow accept).
 *
 * Replies are written by a per-connection script of writes, pauses, closes
 * and resets, so slow replies never hold up the other connections.
 *
 * Threading: fr_* control functions may be called from any thread; the
 * counters are atomics. */
#ifndef FR_FAULTRECV_H
#define FR_FAULTRECV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fr_fault {
	/* connection faults (drawn at accept) */
	FR_REJECT = 0,	 /* accept, then reset at once (RST, linger 0) */
	FR_ACCEPT_CLOSE, /* accept, then close at once (FIN) */
	FR_UNSOLICITED,	 /* a reply frame right after accepting */
	FR_STOP_READING, /* never read the connection (client send blocks) */
	/* message faults (drawn per complete frame) */
	FR_CLOSE_NO_REPLY, /* read the message, close without a reply */
	FR_RST_MID_REPLY,  /* half of the reply, then RST */
	FR_NO_REPLY,	   /* never reply, keep the connection (half-open) */
	FR_BYTEWISE,	   /* reply one byte per write, with pauses */
	FR_SPLIT_EB_CR,	   /* SB ACK EB | pause | CR */
	FR_JUNK_BEFORE,	   /* junk bytes, then the framed ACK */
	FR_DATA_AFTER,	   /* the framed ACK and junk in one write */
	FR_WRONG_ID,	   /* AA with another MSA-2 */
	FR_AE,
	FR_AR,
	FR_CE,
	FR_CR,
	FR_NO_TRAILER, /* SB ACK, never EB CR */
	FR_OVERSIZE,   /* a reply payload of cfg.oversize bytes */
	FR_DOUBLE,     /* two ACK frames for one message */
	FR_COUNT
};

#define FR_FIRST_MSG_FAULT FR_CLOSE_NO_REPLY

/* The fault's name, e.g. "close_no_reply". */
const char *fr_fault_name(enum fr_fault f);

struct fr_config {
	uint16_t port;	     /* 0: ephemeral */
	int backlog;	     /* listen backlog (0 means 128) */
	uint64_t seed;	     /* 0 means 1 */
	int byte_pause_us;   /* FR_BYTEWISE pause per byte (0: 200) */
	int split_pause_us;  /* FR_SPLIT_EB_CR pause (0: 5000) */
	int double_pause_us; /* FR_DOUBLE: 0 one write; else the pause */
	size_t oversize;     /* FR_OVERSIZE payload bytes (0: 1 MiB) */
	int max_conns;	     /* connections kept (0: 256) */
	bool start_paused;   /* do not accept until fr_pause_accept(false) */
};

struct fr {
	struct fr_config cfg;
	uint16_t port;
	pthread_t th;
	bool running;
	int wake[2]; /* self-pipe: control requests */
	/* fault table: probability (ppm) and limit; changeable at any time */
	_Atomic uint32_t prob[FR_COUNT];
	_Atomic uint32_t limit[FR_COUNT];
	_Atomic uint32_t fired[FR_COUNT];
	/* control */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int req;      /* pending request (FR_REQ_*), 0 none */
	uint64_t seq; /* requests made */
	uint64_t done;
	_Atomic bool paused;
	/* counters */
	_Atomic int accepted;
	_Atomic int frames;	/* complete frames read */
	_Atomic int replies;	/* well-formed AA replies written */
	_Atomic int open_conns; /* connections open now */
	_Atomic int listening;	/* 1 while the listener is open */
	_Atomic int restarts;
	/* thread state (receiver thread only) */
	void *priv;
};

/* Start. Fails the test (cmocka) on error. cfg may be NULL. */
void fr_start(struct fr *r, const struct fr_config *cfg);
/* Stop: close the listener and every connection, join the thread. */
void fr_stop(struct fr *r);

/* Set one fault: probability in parts per million (1000000 = always) and
 * a limit on how many times it fires (0: unlimited). Resets its count. */
void fr_set(struct fr *r, enum fr_fault f, uint32_t ppm, uint32_t limit);
/* Clear every fault. */
void fr_clear(struct fr *r);

/* Close (false) or reopen (true) the listener on the same port; returns
 * when done. Connections already open are kept. */
void fr_listen(struct fr *r, bool on);
/* Close the listener and every connection, then listen again on the same
 * port; returns when done. */
void fr_restart(struct fr *r);
/* Close the listener and every connection (the receiver is down: connects
 * are refused) until fr_listen(true); returns when done. */
void fr_down(struct fr *r);
/* Stop (true) or resume (false) accepting. */
void fr_pause_accept(struct fr *r, bool paused);

/* Build the ACK an honest receiver would send for msg (code AA); used by
 * the tests to know the expected bytes. Returns its length. */
size_t fr_build_ack(const unsigned char *msg, size_t len, const char *code,
		    const char *control_id, char *out, size_t cap);

#endif
