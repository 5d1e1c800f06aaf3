/* A small threaded MLLP test receiver for the integration tests: loopback,
 * ephemeral port, scriptable replies. One thread polls the listener and
 * every accepted connection. */
#ifndef TR_RECEIVER_H
#define TR_RECEIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

enum tr_mode {
	TR_ACK = 0,	  /* AA ACK built with mllp_ack_build */
	TR_ECHO,	  /* the payload, framed */
	TR_ACK_BYTEWISE,  /* AA ACK written one byte per write */
	TR_SPLIT_TRAILER, /* SB ACK EB, pause, CR */
	TR_NO_HEADER,	  /* ACK EB CR without SB */
	TR_DATA_AFTER,	  /* SB ACK EB CR junk in one write */
	TR_NO_TRAILER,	  /* SB ACK, never the trailer */
	TR_NONE,	  /* no reply */
	TR_CLOSE,	  /* close the connection on a message */
	TR_STALL,	  /* never read the socket after accepting */
};

#define TR_MAX_CONNS 64

struct tr {
	int lfd;
	uint16_t port;
	pthread_t th;
	bool running;
	_Atomic bool stop;
	_Atomic int mode;
	/* The next `delay_count` replies are delayed by delay_ms. */
	_Atomic int delay_count;
	_Atomic int delay_ms;
	/* Send these bytes right after accepting (unsolicited). */
	_Atomic bool junk_on_accept;
	/* When > 0: every close_every-th frame closes its connection instead
	 * of being answered (fault injection). */
	_Atomic int close_every;
	_Atomic int closes;
	_Atomic int accepted;
	_Atomic int frames;
	_Atomic int open_conns;
	/* peer (client) port of the last accepted connection */
	_Atomic int last_peer_port;
};

/* Start on 127.0.0.1 (port 0: ephemeral; else reuse that port). Fails the
 * test on error. */
void tr_start(struct tr *r, uint16_t port, enum tr_mode mode);
/* Stop: close listener and every connection, join. */
void tr_stop(struct tr *r);
/* An unused loopback port (bound then released). */
uint16_t tr_free_port(void);
/* Wait (bounded, ms) until pred-like counter reaches at least n. */
bool tr_wait_count(_Atomic int *counter, int n, int timeout_ms);
/* Bounded wait for a condition polled every millisecond. */
bool tr_wait_until(bool (*pred)(void *), void *arg, int timeout_ms);

/* A test HL7 message with control id "CTRL<n>" (static buffer per call
 * site: returns a malloc'd string, free it). */
char *tr_hl7(int n, size_t *len);

#endif
