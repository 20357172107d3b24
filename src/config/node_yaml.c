/* YAML -> struct node through libyaml's event parser. Plain scalars stay
 * strings flagged NODE_F_PLAIN (typed later by the field that reads them);
 * anchors and aliases are expanded within a node budget. */
#include "config/node.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Alias expansion copies subtrees; this bounds "billion laughs" documents. */
#define YAML_MAX_NODES 200000

struct frame {
	struct node *node;
	char *key; /* pending mapping key (mappings only) */
	size_t key_len;
	int key_line;
};

struct anchor {
	char *name;
	struct node *node; /* owned by the tree; valid until the parse ends */
};

struct yaml_reader {
	const char *name;
	struct err *err;
	struct frame stack[NODE_MAX_DEPTH + 1];
	int depth;
	struct anchor *anchors;
	size_t n_anchors;
	size_t n_nodes;
	struct node *root;
};

static int count_nodes(const struct node *n)
{
	int c = 1;

	if (n->type == NODE_ARRAY)
		for (size_t i = 0; i < n->arr.n; i++)
			c += count_nodes(n->arr.v[i]);
	else if (n->type == NODE_TABLE)
		for (size_t i = 0; i < n->tbl.n; i++)
			c += count_nodes(n->tbl.v[i].value);
	return c;
}

static int height(const struct node *n)
{
	int h = 0;

	if (n->type == NODE_ARRAY)
		for (size_t i = 0; i < n->arr.n; i++) {
			int c = height(n->arr.v[i]);

			h = c > h ? c : h;
		}
	else if (n->type == NODE_TABLE)
		for (size_t i = 0; i < n->tbl.n; i++) {
			int c = height(n->tbl.v[i].value);

			h = c > h ? c : h;
		}
	return h + 1;
}

static void set_depth(struct node *n, int depth)
{
	n->depth = depth;
	if (n->type == NODE_ARRAY)
		for (size_t i = 0; i < n->arr.n; i++)
			set_depth(n->arr.v[i], depth + 1);
	else if (n->type == NODE_TABLE)
		for (size_t i = 0; i < n->tbl.n; i++)
			set_depth(n->tbl.v[i].value, depth + 1);
}

static int yfail(struct yaml_reader *r, int line, const char *what)
{
	return err_set(r->err, EINVAL, "%s:%d: %s", r->name, line, what);
}

static void remember_anchor(struct yaml_reader *r, const yaml_char_t *anchor, struct node *n)
{
	if (!anchor)
		return;
	r->anchors = xrealloc(r->anchors, (r->n_anchors + 1) * sizeof(*r->anchors));
	r->anchors[r->n_anchors].name = xstrdup((const char *)anchor);
	r->anchors[r->n_anchors].node = n;
	r->n_anchors++;
}

/* Attach a finished (or just opened) node to its parent. */
static int attach(struct yaml_reader *r, struct node *n, int line)
{
	struct frame *top;

	if (++r->n_nodes > YAML_MAX_NODES) {
		node_free(n);
		return yfail(r, line, "document too large (too many nodes after alias expansion)");
	}
	if (r->depth == 0) {
		if (r->root) {
			node_free(n);
			return yfail(r, line, "unexpected second top-level value");
		}
		n->depth = 0;
		r->root = n;
		return 0;
	}
	top = &r->stack[r->depth - 1];
	n->depth = top->node->depth + 1;
	if (top->node->type == NODE_ARRAY) {
		node_array_push(top->node, n);
		return 0;
	}
	if (!top->key) {
		/* This node is a mapping key. */
		if (n->type != NODE_STRING && n->type != NODE_NULL) {
			node_free(n);
			return yfail(r, line, "mapping keys must be strings");
		}
		if (n->type == NODE_STRING) {
			top->key = steal_ptr(&n->str.s);
			top->key_len = n->str.len;
		} else {
			top->key = xstrdup("null");
			top->key_len = 4;
		}
		top->key_line = line;
		node_free(n);
		if (strcmp(top->key, "<<") == 0)
			return yfail(r, line, "YAML merge keys ('<<') are not supported");
		if (node_table_find(top->node, top->key, top->key_len)) {
			struct node_member *m = node_table_find(top->node, top->key, top->key_len);
			char msg[512];

			snprintf(msg, sizeof(msg), "duplicate key '%s' (first defined on line %d)",
			         top->key, m->line);
			return yfail(r, line, msg);
		}
		return 0;
	}
	node_table_add(top->node, top->key, top->key_len, top->key_line, n);
	free(top->key);
	top->key = NULL;
	return 0;
}

static bool tag_is(const yaml_char_t *tag, const char *name)
{
	return tag && strcmp((const char *)tag, name) == 0;
}

static int scalar_node(struct yaml_reader *r, const yaml_event_t *ev, int line, struct node **out)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const yaml_char_t *tag = ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	struct node *n;

	if (tag && !tag_is(tag, YAML_STR_TAG) && !tag_is(tag, YAML_NULL_TAG) &&
	    !tag_is(tag, YAML_BOOL_TAG) && !tag_is(tag, YAML_INT_TAG) &&
	    !tag_is(tag, YAML_FLOAT_TAG) && strcmp((const char *)tag, "!") != 0) {
		char msg[300];

		snprintf(msg, sizeof(msg), "unsupported YAML tag '%.200s'", (const char *)tag);
		return yfail(r, line, msg);
	}
	if (tag_is(tag, YAML_NULL_TAG) || (plain && !tag &&
	                                   (len == 0 || !strcmp(v, "~") || !strcmp(v, "null") ||
	                                    !strcmp(v, "Null") || !strcmp(v, "NULL")))) {
		*out = node_new(NODE_NULL, line);
		return 0;
	}
	n = node_new_string(v, len, line);
	/* A quoted scalar is a string; a plain or explicitly typed one is typed by use. */
	if ((plain && !tag_is(tag, YAML_STR_TAG)) || tag_is(tag, YAML_BOOL_TAG) ||
	    tag_is(tag, YAML_INT_TAG) || tag_is(tag, YAML_FLOAT_TAG))
		n->flags |= NODE_F_PLAIN;
	*out = n;
	return 0;
}

static int open_container(struct yaml_reader *r, enum node_type type, const yaml_char_t *anchor,
                          int line)
{
	struct node *n = node_new(type, line);

	if (r->depth >= NODE_MAX_DEPTH) {
		node_free(n);
		return yfail(r, line, "nesting too deep");
	}
	if (attach(r, n, line) < 0)
		return -1;
	remember_anchor(r, anchor, n);
	r->stack[r->depth].node = n;
	r->stack[r->depth].key = NULL;
	r->depth++;
	return 0;
}

static int handle_event(struct yaml_reader *r, const yaml_event_t *ev)
{
	int line = (int)ev->start_mark.line + 1;
	struct node *n = NULL;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (r->root)
			return yfail(r, line, "more than one YAML document in the file");
		return 0;
	case YAML_SCALAR_EVENT:
		if (scalar_node(r, ev, line, &n) < 0)
			return -1;
		/* Keys are consumed by attach(); remember anchors on values only. */
		if (attach(r, n, line) < 0)
			return -1;
		if (ev->data.scalar.anchor) {
			struct node *last = NULL;
			struct frame *top = r->depth ? &r->stack[r->depth - 1] : NULL;

			if (!top)
				last = r->root;
			else if (top->node->type == NODE_ARRAY)
				last = top->node->arr.v[top->node->arr.n - 1];
			else if (!top->key && top->node->tbl.n)
				last = top->node->tbl.v[top->node->tbl.n - 1].value;
			if (last)
				remember_anchor(r, ev->data.scalar.anchor, last);
		}
		return 0;
	case YAML_SEQUENCE_START_EVENT:
		return open_container(r, NODE_ARRAY, ev->data.sequence_start.anchor, line);
	case YAML_MAPPING_START_EVENT:
		return open_container(r, NODE_TABLE, ev->data.mapping_start.anchor, line);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		r->depth--;
		return 0;
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		struct node *target = NULL;
		int depth = r->depth ? r->stack[r->depth - 1].node->depth + 1 : 0;

		for (size_t i = r->n_anchors; i-- > 0;)
			if (strcmp(r->anchors[i].name, name) == 0) {
				target = r->anchors[i].node;
				break;
			}
		if (!target) {
			char msg[300];

			snprintf(msg, sizeof(msg), "unknown alias '*%.200s'", name);
			return yfail(r, line, msg);
		}
		for (int i = 0; i < r->depth; i++)
			if (r->stack[i].node == target)
				return yfail(r, line, "recursive alias");
		if (depth + height(target) > NODE_MAX_DEPTH)
			return yfail(r, line, "nesting too deep");
		r->n_nodes += (size_t)count_nodes(target) - 1;
		if (r->n_nodes >= YAML_MAX_NODES)
			return yfail(r, line,
			             "document too large (too many nodes after alias "
			             "expansion)");
		n = node_copy(target);
		set_depth(n, depth);
		return attach(r, n, line);
	}
	default:
		return 0;
	}
}

int yaml_parse(const char *text, size_t len, const char *name, struct node **out, struct err *err)
{
	struct yaml_reader r = {.name = name, .err = err};
	yaml_parser_t parser;
	bool done = false;
	int ret = -1;

	{
		/* libyaml reports encoding errors without a line; find it here. */
		const char *bad = utf8_invalid(text, len);

		if (bad) {
			int line = 1;

			for (const char *q = text; q < bad; q++)
				line += *q == '\n';
			return err_set(err, EINVAL, "%s:%d: invalid UTF-8 (byte 0x%02X)", name,
			               line, (unsigned char)*bad);
		}
	}
	if (!yaml_parser_initialize(&parser))
		return err_set(err, ENOMEM, "%s: cannot initialize the YAML parser", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			const yaml_mark_t *mark =
			    parser.problem ? &parser.problem_mark : &parser.context_mark;

			err_set(err, EINVAL, "%s:%d: invalid YAML: %s%s%s", name,
			        (int)mark->line + 1,
			        parser.problem ? parser.problem : "syntax error",
			        parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		if (handle_event(&r, &ev) < 0) {
			yaml_event_delete(&ev);
			goto out;
		}
		yaml_event_delete(&ev);
	}
	*out = r.root ? steal_ptr(&r.root) : node_new(NODE_NULL, 1);
	ret = 0;
out:
	for (int i = 0; i < r.depth; i++)
		free(r.stack[i].key);
	for (size_t i = 0; i < r.n_anchors; i++)
		free(r.anchors[i].name);
	free(r.anchors);
	node_free(r.root);
	yaml_parser_delete(&parser);
	return ret;
}
