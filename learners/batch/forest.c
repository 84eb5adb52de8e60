/* Tree-ensemble evaluation for serving (see learners/batch/native.py, which builds the arrays).
 *
 * The trees of one or more boosters are flattened into one node array: the two children of a
 * node are adjacent (child is the left one, child + 1 the right one), and a leaf's child is
 * the leaf itself, reached whatever the row holds, so every tree is walked a fixed number of
 * steps (its depth) without a branch on the path. Rows are float32, row-major. A node sends a
 * row right when
 *   numerical node:  value >= threshold, or the value is NaN and the node's default is right
 *                    (native.py converts Treelite's "<" and "<=" tests to "<" on float32);
 *   categorical node: bit `code` of the node's 256-bit set, where code is the value's
 *                    category (0..254) or 255 for NaN (and for values outside 0..254, which
 *                    the feature encoder never produces); native.py stores the set already
 *                    complemented when the listed categories go left, and bit 255 is the
 *                    node's default direction. Its threshold is NaN, so the numerical test
 *                    is always false; numerical nodes use the empty set 0.
 * A leaf is a node with the empty set and a NaN threshold: it never moves.
 * Columns equal in every row of a call (a request's context) are tested once per call: a
 * backward pass over the nodes (specialise) lets each row skip the splits on them.
 * Trees are the outer loop and rows the inner one, BLOCK rows side by side: one tree's
 * nodes stay in the L1 cache for all rows, and the rows' independent walks overlap in the CPU.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 8
#define SPECIALISE_ROWS 2 /* fewer rows: every column counts as varying */
#define NO_CATEGORY 255u

typedef struct {
    int32_t feature;   /* column of the row */
    float threshold;   /* numerical split: right when value >= threshold */
    int32_t child;     /* left child (the right child is next); a leaf: itself */
    uint32_t info;     /* first 64-bit word of the category set (a multiple of 4), | 1 when
                          a NaN goes right at a numerical node */
} node_t;

typedef struct {
    int32_t n_trees;
    int32_t n_targets;
    int32_t n_features;
    int32_t n_nodes;
    const int32_t *root;   /* per tree: index of its root node */
    const int32_t *depth;  /* per tree: steps from the root to its deepest leaf */
    const int32_t *target; /* per tree: output column it adds to */
    const node_t *nodes;
    const uint64_t *words; /* category sets, four words each */
    const float *value;    /* per node: leaf value (0 for inner nodes) */
} forest_t;

static inline int32_t step(const forest_t *f, int32_t index, const float *row,
                           const uint8_t *codes) {
    const node_t *node = f->nodes + index;
    const float x = row[node->feature];
    const uint32_t code = codes[node->feature];
    const uint64_t word = f->words[(node->info & ~3u) + (code >> 6)];
    const uint32_t right = (uint32_t)((word >> (code & 63u)) & 1u)
        | (uint32_t)(x >= node->threshold)
        | ((node->info & 1u) & (uint32_t)!(x < node->threshold));
    return node->child + (int32_t)right;
}

/* Where a row goes from `index`, skipping the nodes whose test is the same for every row
 * (jump) and how many steps its deepest path still takes (steps): nodes come after their
 * parents, so one backward pass settles both. */
static void specialise(const forest_t *f, const float *row, const uint8_t *codes,
                       const uint8_t *constant, int32_t *jump, uint8_t *steps) {
    for (int32_t i = f->n_nodes - 1; i >= 0; --i) {
        const node_t *node = f->nodes + i;
        if (node->child == i) {  /* a leaf */
            jump[i] = i;
            steps[i] = 0;
        } else if (constant[node->feature]) {
            const int32_t next = step(f, i, row, codes);
            jump[i] = jump[next];
            steps[i] = steps[next];
        } else {
            const uint8_t left = steps[node->child], right = steps[node->child + 1];
            jump[i] = i;
            steps[i] = (uint8_t)(1 + (left > right ? left : right));
        }
    }
}

static inline int32_t follow(const forest_t *f, const int32_t *jump, int32_t index,
                             const float *row, const uint8_t *codes) {
    const int32_t next = step(f, index, row, codes);
    return jump ? jump[next] : next;
}

/* out[i * n_targets + target] += leaf values (out must hold the base scores);
 * leaves, when not NULL, receives the leaf node index of each row in each of the first
 * leaf_trees trees (row-major, leaf_trees per row).
 * Columns that hold the same value in every row (a request's context) are tested once, not
 * once per row. Returns 0, or -1 when memory for the work arrays cannot be had. */
int forest_predict(const forest_t *f, const float *rows, int64_t n_rows, int64_t stride,
                   double *out, int32_t *leaves, int32_t leaf_trees) {
    const int64_t width = f->n_features;
    uint8_t *codes = malloc((size_t)(n_rows * width + width + 1));
    int32_t *jump = malloc((sizeof(int32_t) + 1) * (size_t)f->n_nodes);
    if (!codes || !jump) {
        free(codes);
        free(jump);
        return -1;
    }
    uint8_t *steps = (uint8_t *)(jump + f->n_nodes);
    uint8_t *constant = codes + n_rows * width;
    for (int64_t i = 0; i < n_rows; ++i) {
        for (int64_t j = 0; j < width; ++j) {
            const float x = rows[i * stride + j];
            codes[i * width + j] = (x >= 0.0f && x < 255.0f) ? (uint8_t)x : NO_CATEGORY;
        }
    }
    int any_constant = 0;
    for (int64_t j = 0; j < width; ++j) {
        int same = n_rows >= SPECIALISE_ROWS;
        for (int64_t i = 1; i < n_rows && same; ++i) {
            same = memcmp(rows + i * stride + j, rows + j, sizeof(float)) == 0;
        }
        constant[j] = (uint8_t)same;
        any_constant |= same;
    }
    if (any_constant) {
        specialise(f, rows, codes, constant, jump, steps);
    } else {  /* nothing to skip: the pass over every node would cost more than it saves */
        free(jump);
        jump = NULL;
        steps = NULL;
    }
    for (int32_t t = 0; t < f->n_trees; ++t) {
        const int32_t root = jump ? jump[f->root[t]] : f->root[t];
        const int32_t depth = jump ? steps[f->root[t]] : f->depth[t];
        const int32_t target = f->target[t];
        for (int64_t start = 0; start < n_rows; start += BLOCK) {
            const int64_t count = n_rows - start < BLOCK ? n_rows - start : BLOCK;
            const float *block = rows + start * stride;
            const uint8_t *block_codes = codes + start * width;
            int32_t node[BLOCK];
            for (int64_t j = 0; j < BLOCK; ++j) {
                node[j] = root;
            }
            if (count == BLOCK) {
                for (int32_t d = 0; d < depth; ++d) {
                    for (int64_t j = 0; j < BLOCK; ++j) {
                        node[j] = follow(f, jump, node[j], block + j * stride,
                                         block_codes + j * width);
                    }
                }
            } else {
                for (int32_t d = 0; d < depth; ++d) {
                    for (int64_t j = 0; j < count; ++j) {
                        node[j] = follow(f, jump, node[j], block + j * stride,
                                         block_codes + j * width);
                    }
                }
            }
            for (int64_t j = 0; j < count; ++j) {
                out[(start + j) * f->n_targets + target] += (double)f->value[node[j]];
                if (leaves && t < leaf_trees) {
                    leaves[(start + j) * leaf_trees + t] = node[j];
                }
            }
        }
    }
    free(codes);
    free(jump);
    return 0;
}
