/* Line charts as inline SVG, for mllp-load's HTML report: axes with
 * ticks and labels (linear or log10), one <path> per series, a legend.
 * Colours and fonts come from the page's stylesheet (classes c0..c5). */
#ifndef MLLP_TOOLS_LOAD_SVG_H
#define MLLP_TOOLS_LOAD_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* How tick labels read: plain numbers (1.5k, 2M), microseconds (250 us,
 * 1.5 ms, 2 s), seconds (10 s), or 1/(1-p) shown as a percentile (90%,
 * 99.9%). */
enum svg_fmt { SVG_NUM, SVG_US, SVG_SEC, SVG_PCT };

struct svg_axis {
	double lo, hi;
	bool log; /* log10 scale; lo > 0 */
	enum svg_fmt fmt;
	const char *title;
};

struct svg_chart {
	FILE *f;
	struct svg_axis x, y;
	/* Set by svg_begin: the plot area in the 640 x 300 viewBox. */
	double px, py, pw, ph;
};

/* Round the axis out to nice ticks around [lo, hi] (log: whole decades,
 * values at or below 0 are ignored; an empty range still gets a span). */
void svg_axis_fit(struct svg_axis *a, double lo, double hi);
/* Open <svg id=id> with its <title> (for readers; the page shows a
 * heading), the grid, the ticks and the axis titles. */
void svg_begin(struct svg_chart *c, const char *id, const char *title);
/* One series as a <path class=cls> through (x, y), or with x0 a step
 * holding y over [x0, x) per point. A NaN y leaves a gap; a lone point is
 * a dot. Nothing at all when every y is NaN. */
void svg_series(struct svg_chart *c, const double *x0, const double *x,
		const double *y, size_t n, const char *cls);
/* The legend (top right, one entry per series) and </svg>. */
void svg_end(struct svg_chart *c, const char *const *labels,
	     const char *const *classes, size_t n);

#endif
