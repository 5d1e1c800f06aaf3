/* Shared helpers for the test programs: corpus access and guard pages. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MLLP_CORPUS_DIR
#error "MLLP_CORPUS_DIR must name the HL7 corpus directory"
#endif
#ifndef MLLP_EXTRA_CORPUS_DIR
#error "MLLP_EXTRA_CORPUS_DIR must name a second corpus or be empty"
#endif

static char *tui_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p == NULL)
		fail_msg("out of memory");
	memcpy(p, s, n);
	return p;
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long size = -1;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		fail_msg("cannot size %s: %s", path, strerror(errno));
	}
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		fclose(f);
		fail_msg("out of memory reading %s", path);
	}
	if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		fclose(f);
		fail_msg("short read on %s", path);
	}
	fclose(f);
	buf[size] = '\0';
	*len = (size_t)size;
	return buf;
}

char tu_extra_corpus_tag;

const char *tu_corpus_dir(void **state)
{
	if (state == NULL || *state != TU_EXTRA_CORPUS)
		return MLLP_CORPUS_DIR;
	if (MLLP_EXTRA_CORPUS_DIR[0] == '\0') {
		print_message("extra HL7 corpus not configured "
			      "(MLLP_EXTRA_CORPUS_DIR is empty): only the "
			      "project's corpus was checked\n");
		skip();
	}
	return MLLP_EXTRA_CORPUS_DIR;
}

void tu_corpus_checked(const char *dir, size_t n, const char *what)
{
	print_message("%zu %s checked in %s corpus %s\n", n, what,
		      strcmp(dir, MLLP_CORPUS_DIR) == 0 ? "the project's"
							: "the extra",
		      dir);
}

unsigned char *tu_corpus_at(const char *dir, const char *rel, size_t *len)
{
	size_t n = strlen(dir) + 1 + strlen(rel) + 1;
	char *path = malloc(n);
	unsigned char *data;

	if (path == NULL)
		fail_msg("out of memory");
	snprintf(path, n, "%s/%s", dir, rel);
	data = tu_read_file(path, len);
	free(path);
	return data;
}

unsigned char *tu_corpus(const char *rel, size_t *len)
{
	return tu_corpus_at(MLLP_CORPUS_DIR, rel, len);
}

static int tui_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tu_corpus_list(const char *subdir, char ***names)
{
	return tu_corpus_list_at(MLLP_CORPUS_DIR, subdir, names);
}

size_t tu_corpus_list_at(const char *corpus, const char *subdir, char ***names)
{
	size_t dlen = strlen(corpus) + 1 + strlen(subdir) + 1;
	char *dir = malloc(dlen);
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *dp;

	if (dir == NULL)
		fail_msg("out of memory");
	snprintf(dir, dlen, "%s/%s", corpus, subdir);
	dp = opendir(dir);
	if (dp == NULL)
		fail_msg("cannot open corpus directory %s: %s", dir,
			 strerror(errno));
	while ((e = readdir(dp)) != NULL) {
		size_t plen = dlen + strlen(e->d_name) + 1;
		char *full, *rel;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		full = malloc(plen);
		if (full == NULL)
			fail_msg("out of memory");
		snprintf(full, plen, "%s/%s", dir, e->d_name);
		if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(full);
			continue;
		}
		free(full);
		rel = malloc(strlen(subdir) + 1 + strlen(e->d_name) + 1);
		if (rel == NULL)
			fail_msg("out of memory");
		sprintf(rel, "%s/%s", subdir, e->d_name);
		if (n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				fail_msg("out of memory");
			v = nv;
		}
		v[n++] = rel;
	}
	closedir(dp);
	free(dir);
	if (n > 1)
		qsort(v, n, sizeof(*v), tui_cmp_names);
	*names = v;
	return n;
}

void tu_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

size_t tu_vectors(struct tu_vector **rows)
{
	return tu_vectors_at(MLLP_CORPUS_DIR, rows);
}

size_t tu_vectors_at(const char *dir, struct tu_vector **rows)
{
	size_t len, n = 0, cap = 0;
	unsigned char *text = tu_corpus_at(dir, "vectors.tsv", &len);
	struct tu_vector *v = NULL;
	char *line = (char *)text;
	bool header = true;

	while (line != NULL && *line != '\0') {
		char *next = strchr(line, '\n');
		char *f[3];
		size_t k = 0;

		if (next != NULL)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (header) {
			header = false;
			line = next;
			continue;
		}
		if (*line == '\0') {
			line = next;
			continue;
		}
		f[k++] = line;
		for (char *p = line; *p != '\0' && k < 3; p++) {
			if (*p == '\t') {
				*p = '\0';
				f[k++] = p + 1;
			}
		}
		if (k != 3)
			fail_msg("vectors.tsv: row %zu has %zu fields", n + 1,
				 k);
		if (n == cap) {
			struct tu_vector *nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				fail_msg("out of memory");
			v = nv;
		}
		v[n].message = tui_strdup(f[0]);
		v[n].ack = tui_strdup(f[1]);
		v[n].expected = tui_strdup(f[2]);
		n++;
		line = next;
	}
	free(text);
	if (n == 0)
		fail_msg("vectors.tsv has no rows");
	*rows = v;
	return n;
}

void tu_free_vectors(struct tu_vector *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].message);
		free(rows[i].ack);
		free(rows[i].expected);
	}
	free(rows);
}

unsigned char *tu_guard_copy(struct tu_guard *g, const void *src, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (len + page - 1) / page * page;
	unsigned char *map;

	g->map_len = body + page;
	map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		fail_msg("mmap %zu bytes: %s", g->map_len, strerror(errno));
	if (mprotect(map + body, page, PROT_NONE) != 0)
		fail_msg("mprotect: %s", strerror(errno));
	g->map = map;
	g->data = map + body - len;
	if (len > 0)
		memcpy(g->data, src, len);
	return g->data;
}

void tu_guard_free(struct tu_guard *g)
{
	if (g->map != NULL)
		munmap(g->map, g->map_len);
	g->map = NULL;
	g->map_len = 0;
	g->data = NULL;
}
