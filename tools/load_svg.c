/* Line charts as inline SVG (see load_svg.h). */
#include <math.h>
#include <string.h>

#include "load_svg.h"

enum { W = 640, H = 300, LEFT = 70, RIGHT = 30, TOP = 40, BOTTOM = 46 };

/* 1, 2, 2.5 or 5 times a power of ten, at least x. */
static double nice_step(double x)
{
	double p = pow(10, floor(log10(x)));
	static const double m[] = {1, 2, 2.5, 5, 10};
	for (size_t i = 0; i < 5; i++)
		if (m[i] * p >= x)
			return m[i] * p;
	return 10 * p;
}

void svg_axis_fit(struct svg_axis *a, double lo, double hi)
{
	if (a->log) {
		if (!(lo > 0))
			lo = hi > 0 ? hi : 1;
		if (!(hi >= lo))
			hi = lo;
		a->lo = pow(10, floor(log10(lo)));
		a->hi = pow(10, ceil(log10(hi)));
		if (a->hi <= a->lo)
			a->hi = a->lo * 10;
		return;
	}
	if (!(hi > lo))
		hi = lo + 1;
	double step = nice_step((hi - lo) / 5);
	/* A run of 3.005 s ends its axis at 3 s, not 4 (the last
	 * 0.02 step is drawn at the edge). */
	a->lo = floor(lo / step + 1e-3) * step;
	a->hi = ceil(hi / step - 0.02) * step;
}

/* Where v falls on the axis, 0..1. */
static double frac(const struct svg_axis *a, double v)
{
	double f;
	if (a->log) {
		if (v < a->lo)
			v = a->lo;
		f = (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
	} else {
		f = (v - a->lo) / (a->hi - a->lo);
	}
	return f < 0 ? 0 : f > 1 ? 1 : f;
}

static double cx(const struct svg_chart *c, double v)
{
	return c->px + c->pw * frac(&c->x, v);
}

static double cy(const struct svg_chart *c, double v)
{
	return c->py + c->ph * (1 - frac(&c->y, v));
}

static void label(char *out, size_t cap, enum svg_fmt fmt, double v)
{
	switch (fmt) {
	case SVG_US:
		if (v < 1000)
			snprintf(out, cap, "%g us", v);
		else if (v < 1e6)
			snprintf(out, cap, "%g ms", v / 1e3);
		else
			snprintf(out, cap, "%g s", v / 1e6);
		return;
	case SVG_SEC:
		snprintf(out, cap, "%g s", v);
		return;
	case SVG_PCT: {
		int dec = (int)lround(log10(v)) - 2;
		snprintf(out, cap, "%.*f%%", dec > 0 ? dec : 0,
			 100 * (1 - 1 / v));
		return;
	}
	case SVG_NUM:
		if (v >= 1e6)
			snprintf(out, cap, "%gM", v / 1e6);
		else if (v >= 1e3)
			snprintf(out, cap, "%gk", v / 1e3);
		else
			snprintf(out, cap, "%g", v);
		return;
	}
}

/* The axis's ticks into t (at most cap); returns how many. Log axes: every
 * decade, with 2 and 5 between when there are few decades (not for
 * percentiles). */
static size_t ticks(const struct svg_axis *a, double *t, size_t cap)
{
	size_t n = 0;
	if (a->log) {
		double decades = log10(a->hi / a->lo);
		bool minor = decades <= 3 && a->fmt != SVG_PCT;
		for (double d = a->lo; d <= a->hi * 1.0001 && n < cap;
		     d *= 10) {
			t[n++] = d;
			if (minor && d * 2 < a->hi && n + 2 <= cap) {
				t[n++] = d * 2;
				t[n++] = d * 5;
			}
		}
		return n;
	}
	double step = nice_step((a->hi - a->lo) / 5);
	for (double v = a->lo; v <= a->hi + step / 1000 && n < cap; v += step)
		t[n++] = fabs(v) < step / 1000 ? 0 : v;
	return n;
}

void svg_begin(struct svg_chart *c, const char *id, const char *title)
{
	FILE *f = c->f;
	c->px = LEFT;
	c->py = TOP;
	c->pw = W - LEFT - RIGHT;
	c->ph = H - TOP - BOTTOM;
	fprintf(f,
		"<svg id=\"%s\" class=\"chart\" "
		"xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
		"role=\"img\"><title>%s</title>\n",
		id, W, H, title);
	double t[40];
	char s[32];
	size_t n = ticks(&c->x, t, 40);
	fprintf(f, "<g class=\"grid\">");
	for (size_t i = 0; i < n; i++)
		fprintf(
		    f,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
		    cx(c, t[i]), c->py, cx(c, t[i]), c->py + c->ph);
	size_t m = ticks(&c->y, t + n, 40 - n);
	for (size_t i = n; i < n + m; i++)
		fprintf(
		    f,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
		    c->px, cy(c, t[i]), c->px + c->pw, cy(c, t[i]));
	fprintf(f, "</g>\n<g class=\"xl\">");
	for (size_t i = 0; i < n; i++) {
		label(s, sizeof(s), c->x.fmt, t[i]);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", cx(c, t[i]),
			c->py + c->ph + 16, s);
	}
	fprintf(f, "</g>\n<g class=\"yl\">");
	for (size_t i = n; i < n + m; i++) {
		label(s, sizeof(s), c->y.fmt, t[i]);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", c->px - 6,
			cy(c, t[i]) + 4, s);
	}
	fprintf(f,
		"</g>\n<g class=\"axis\"><line x1=\"%.1f\" y1=\"%.1f\" "
		"x2=\"%.1f\" y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" "
		"x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
		c->px, c->py, c->px, c->py + c->ph, c->px, c->py + c->ph,
		c->px + c->pw, c->py + c->ph);
	fprintf(f,
		"<text class=\"at\" x=\"%.1f\" y=\"%d\">%s</text>\n"
		"<text class=\"at\" transform=\"translate(14 %.1f) "
		"rotate(-90)\">%s</text>\n",
		c->px + c->pw / 2, H - 6, c->x.title, c->py + c->ph / 2,
		c->y.title);
}

void svg_series(struct svg_chart *c, const double *x0, const double *x,
		const double *y, size_t n, const char *cls)
{
	bool any = false;
	for (size_t i = 0; i < n && !any; i++)
		any = !isnan(y[i]);
	if (!any)
		return; /* nothing to draw: no empty path */
	fprintf(c->f, "<path class=\"%s\" d=\"", cls);
	bool pen = false;
	for (size_t i = 0; i < n; i++) {
		if (isnan(y[i])) {
			pen = false;
			continue;
		}
		if (x0) {
			/* A step: the value holds over [x0, x). */
			fprintf(c->f, "%s%.1f %.1fH%.1f", pen ? "L" : "M",
				cx(c, x0[i]), cy(c, y[i]), cx(c, x[i]));
		} else {
			bool alone = (i + 1 == n || isnan(y[i + 1])) && !pen;
			fprintf(c->f, "%s%.1f %.1f%s", pen ? "L" : "M",
				cx(c, x[i]), cy(c, y[i]), alone ? "h0.1" : "");
		}
		pen = true;
	}
	fprintf(c->f, "\"/>\n");
}

void svg_end(struct svg_chart *c, const char *const *labels,
	     const char *const *classes, size_t n)
{
	/* Right-aligned above the plot, entries from the right. */
	double x = W - RIGHT;
	for (size_t i = n; i-- > 0;) {
		double w = 7.0 * (double)strlen(labels[i]) + 30;
		x -= w;
		fprintf(c->f,
			"<line class=\"%s\" x1=\"%.1f\" y1=\"16\" x2=\"%.1f\" "
			"y2=\"16\"/><text class=\"lg\" x=\"%.1f\" "
			"y=\"20\">%s</text>\n",
			classes[i], x, x + 18, x + 22, labels[i]);
	}
	fprintf(c->f, "</svg>\n");
}
