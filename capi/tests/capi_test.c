/* Host test of the simsiam C ABI, linked against the static library (see
 * .ci/steps/50-capi.sh, which runs it under valgrind).
 *
 * Usage: capi_test OFFICIAL REFERENCE: the parameter images `reference write-image PATH
 * official` (the official head: BatchNorm, a 3-layer projector) and `reference
 * write-image PATH reference` (the scenario's reference head, whose image model must
 * give the reference model's results bit for bit, through the calls without workspace).
 *
 * Normal use: prints the scenario's lines (`params.fnv`, then `key hex-bits...` for each
 * twin, see capi/examples/reference.rs) and the image scenario's (`image.fnv`, then
 * `image.key hex-bits...`) on stdout, which `reference compare FILE simd,scalar --image`
 * checks against the Rust API: every line once, every float bit for bit. The batch
 * workspace length must be exactly 4 * d_out * min(n, 8) for the reference head,
 * min(n, 8) * (4 * d_out + 2 * prev_dim) for the official one, and enough. Bad inputs:
 * every NULL pointer, wrong length, zero dimension, non-finite value, overlap,
 * misalignment, bad backend, unknown struct_size or kind, and malformed image must give
 * its status code and leave the outputs untouched. Ends with `N passed, N failed` on
 * stderr and exits non-zero on any failure. Heap buffers are sized exactly so that
 * valgrind sees any out-of-bounds access. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simsiam.h"

static int passed = 0;
static int failed = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      passed++;                                                            \
    } else {                                                               \
      failed++;                                                            \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
    }                                                                      \
  } while (0)

#define EXPECT(call, status)                                               \
  do {                                                                     \
    SimsiamStatus got_ = (call);                                           \
    if (got_ == (status)) {                                                \
      passed++;                                                            \
    } else {                                                               \
      failed++;                                                            \
      fprintf(stderr, "FAIL %s:%d: %s -> %d (%s), expected %s\n", __FILE__, \
              __LINE__, #call, (int)got_, simsiam_status_message(got_),    \
              #status);                                                    \
    }                                                                      \
  } while (0)

#define CHECK_SIZE(got, want)                                              \
  do {                                                                     \
    size_t got_ = (got), want_ = (want);                                   \
    if (got_ == want_) {                                                   \
      passed++;                                                            \
    } else {                                                               \
      failed++;                                                            \
      fprintf(stderr, "FAIL %s:%d: %s = %zu, expected %s = %zu\n", __FILE__, \
              __LINE__, #got, got_, #want, want_);                         \
    }                                                                      \
  } while (0)

static float *alloc_floats(size_t n) {
  float *p = malloc(n * sizeof(float));
  if (p == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

static void print_line(const char *key, const float *v, size_t n) {
  printf("%s", key);
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    printf(" %08x", (unsigned)bits);
  }
  printf("\n");
}

static uint64_t fnv1a(const float *v, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    for (int b = 0; b < 4; b++) {
      h = (h ^ ((bits >> (8 * b)) & 0xffu)) * 0x00000100000001b3ull;
    }
  }
  return h;
}

/* The scenario's fixed inputs, exact in float. */
static void fill_input(float *z, size_t n, size_t mul, size_t mod, float offset) {
  for (size_t i = 0; i < n; i++) z[i] = (float)((i * mul) % mod) * 0.125f - offset;
}

static int all_equal(const float *v, size_t n, float x) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&v[i], &x, sizeof x) != 0) return 0;
  return 1;
}

static const float SENTINEL = 12345.0f;

/* Runs project, predict and loss on one backend and prints their lines. */
static void run_backend(SimsiamModel model, uint32_t backend, const char *name,
                        const float *z1, const float *z2, size_t d_enc, size_t d_out) {
  char key[32];
  float *projected = alloc_floats(d_out);
  float *predicted = alloc_floats(d_out);
  float *workspace = alloc_floats(4 * d_out);
  float loss = SENTINEL;
  model.backend = backend;
  EXPECT(simsiam_project(&model, z1, d_enc, projected, d_out), SIMSIAM_STATUS_OK);
  EXPECT(simsiam_predict(&model, projected, d_out, predicted, d_out), SIMSIAM_STATUS_OK);
  EXPECT(simsiam_loss(&model, z1, d_enc, z2, d_enc, workspace, 4 * d_out, &loss),
         SIMSIAM_STATUS_OK);
  CHECK(loss >= -1.0f - 1e-5f && loss <= 1.0f + 1e-5f);
  /* The workspace holds z1', z2', p1, p2: z1' and p1 are what project and predict gave
   * above, up to summation order (the loss may process both views together). */
  for (size_t i = 0; i < d_out; i++) {
    CHECK(fabsf(workspace[i] - projected[i]) <= 2e-5f);
    CHECK(fabsf(workspace[2 * d_out + i] - predicted[i]) <= 2e-5f);
  }
  snprintf(key, sizeof key, "project.%s", name);
  print_line(key, projected, d_out);
  snprintf(key, sizeof key, "predict.%s", name);
  print_line(key, predicted, d_out);
  snprintf(key, sizeof key, "loss.%s", name);
  print_line(key, &loss, 1);
  free(projected);
  free(predicted);
  free(workspace);
}

static float max_diff(const float *a, const float *b, size_t n) {
  float worst = 0.0f;
  for (size_t i = 0; i < n; i++) worst = fmaxf(worst, fabsf(a[i] - b[i]));
  return worst;
}

/* Architecture::lanes_len of the reference head of `c`, by its documented formula: 16
 * lanes for each of min(max(d_encoder, d_out), P) input columns, min(max(d_projector,
 * d_predictor), P) hidden units and min(d_out, 64) output rows, P = 128 when both maxima
 * are at most 128 (else 512), plus 15 floats of slack. */
static size_t reference_lanes_len(SimsiamConfig c) {
  const size_t in = c.d_encoder > c.d_out ? c.d_encoder : c.d_out;
  const size_t hidden = c.d_projector > c.d_predictor ? c.d_projector : c.d_predictor;
  const size_t cap = in > 128 || hidden > 128 ? 512 : 128;
  const size_t rows = c.d_out < 64 ? c.d_out : 64;
  return 16 * ((in < cap ? in : cap) + (hidden < cap ? hidden : cap) + rows) + 15;
}

/* `p` moved by one byte: not aligned for a float (never dereferenced: every call below
 * must refuse it before). */
static float *off_by_one(const void *p) { return (float *)((uintptr_t)p + 1); }

typedef SimsiamStatus (*BatchWs)(const SimsiamModel *, const float *, size_t, float *, size_t,
                                 float *, size_t);

/* The pointer checks of every batch call, on a reference model and `n` rows of valid
 * inputs (`ps` are the projections of `zs`): the `_ws` calls with a NULL workspace of
 * non-zero length, a misaligned one, and one that meets the input, the output or the
 * parameters; MISALIGNED for each pointer of each batch call. Nothing is written. */
static void test_batch_pointers(const SimsiamModel *model, const float *zs, const float *zs2,
                                const float *ps, float *losses, float *ws, size_t ws_len,
                                size_t d_enc, size_t d_out, size_t n) {
  float *out = alloc_floats(n * d_out);
  for (size_t i = 0; i < n * d_out; i++) out[i] = SENTINEL;
  for (size_t i = 0; i < n; i++) losses[i] = SENTINEL;
  const BatchWs calls[2] = {simsiam_project_batch_ws, simsiam_predict_batch_ws};
  const float *inputs[2] = {zs, ps};
  const size_t input_lens[2] = {n * d_enc, n * d_out};
  for (size_t c = 0; c < 2; c++) {
    const BatchWs call = calls[c];
    const float *x = inputs[c];
    const size_t x_len = input_lens[c];
    /* The valid call, for reference. */
    EXPECT(call(model, x, x_len, out, n * d_out, ws, ws_len), SIMSIAM_STATUS_OK);
    for (size_t i = 0; i < n * d_out; i++) out[i] = SENTINEL;
    EXPECT(call(model, x, x_len, out, n * d_out, NULL, ws_len), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(call(model, x, x_len, out, n * d_out, off_by_one(ws), ws_len - 1),
           SIMSIAM_STATUS_MISALIGNED);
    EXPECT(call(model, x, x_len, out, n * d_out, (float *)x, x_len), SIMSIAM_STATUS_OVERLAP);
    EXPECT(call(model, x, x_len, out, n * d_out, out + 1, n * d_out - 1),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(call(model, x, x_len, out, n * d_out, (float *)model->params + 7, 4),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(call(model, off_by_one(x), x_len - 1, out, n * d_out, ws, ws_len),
           SIMSIAM_STATUS_MISALIGNED);
    EXPECT(call(model, x, x_len, off_by_one(out), n * d_out - 1, ws, ws_len),
           SIMSIAM_STATUS_MISALIGNED);
  }
  EXPECT(simsiam_project_batch(model, off_by_one(zs), n * d_enc - 1, out, n * d_out),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_project_batch(model, zs, n * d_enc, off_by_one(out), n * d_out - 1),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_predict_batch(model, off_by_one(ps), n * d_out - 1, out, n * d_out),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_predict_batch(model, ps, n * d_out, off_by_one(out), n * d_out - 1),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_loss_batch(model, off_by_one(zs), n * d_enc - 1, zs2, n * d_enc, losses, n, ws,
                            ws_len),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, off_by_one(zs2), n * d_enc - 1, losses, n, ws,
                            ws_len),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, off_by_one(losses), n - 1, ws,
                            ws_len),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, off_by_one(ws),
                            ws_len - 1),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, NULL, 0),
         SIMSIAM_STATUS_NULL_POINTER);
  CHECK(all_equal(out, n * d_out, SENTINEL));
  CHECK(all_equal(losses, n, SENTINEL));
  free(out);
}

static void test_batch(const SimsiamModel *model, const float *z1, const float *z2,
                       size_t d_enc, size_t d_out) {
  const size_t n = 3;
  float *zs = alloc_floats(n * d_enc), *zs2 = alloc_floats(n * d_enc);
  for (size_t j = 0; j < n; j++) {
    memcpy(zs + j * d_enc, j == 1 ? z2 : z1, d_enc * sizeof(float));
    memcpy(zs2 + j * d_enc, j == 1 ? z1 : z2, d_enc * sizeof(float));
  }
  float *out = alloc_floats(n * d_out), *pred = alloc_floats(n * d_out);
  float *single = alloc_floats(d_out), *single_pred = alloc_floats(d_out);
  float *losses = alloc_floats(n);
  size_t ws_len = 0;
  EXPECT(simsiam_batch_loss_workspace_len(model->config, n, &ws_len), SIMSIAM_STATUS_OK);
  /* n = 3 <= 8 pairs: one group, with its lane blocks */
  CHECK_SIZE(ws_len, 4 * d_out * n + reference_lanes_len(model->config));
  EXPECT(simsiam_batch_loss_workspace_len(model->config, 1, NULL), SIMSIAM_STATUS_NULL_POINTER);
  float *ws = alloc_floats(ws_len), *single_ws = alloc_floats(4 * d_out);
  for (uint32_t backend = 0; backend < 2; backend++) {
    SimsiamModel m = *model;
    m.backend = backend;
    EXPECT(simsiam_project_batch(&m, zs, n * d_enc, out, n * d_out), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_predict_batch(&m, out, n * d_out, pred, n * d_out), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_loss_batch(&m, zs, n * d_enc, zs2, n * d_enc, losses, n, ws, ws_len),
           SIMSIAM_STATUS_OK);
    for (size_t j = 0; j < n; j++) {
      float loss = SENTINEL;
      EXPECT(simsiam_project(&m, zs + j * d_enc, d_enc, single, d_out), SIMSIAM_STATUS_OK);
      EXPECT(simsiam_predict(&m, out + j * d_out, d_out, single_pred, d_out),
             SIMSIAM_STATUS_OK);
      EXPECT(simsiam_loss(&m, zs + j * d_enc, d_enc, zs2 + j * d_enc, d_enc, single_ws,
                          4 * d_out, &loss),
             SIMSIAM_STATUS_OK);
      if (backend == SIMSIAM_BACKEND_SCALAR) {
        /* The scalar backend sums a batch in the single calls' order: bit for bit. */
        CHECK(memcmp(out + j * d_out, single, d_out * sizeof(float)) == 0);
        CHECK(memcmp(pred + j * d_out, single_pred, d_out * sizeof(float)) == 0);
        CHECK(memcmp(&losses[j], &loss, sizeof loss) == 0);
      } else {
        CHECK(max_diff(out + j * d_out, single, d_out) <= 2e-5f);
        CHECK(max_diff(pred + j * d_out, single_pred, d_out) <= 2e-5f);
        CHECK(fabsf(losses[j] - loss) <= 2e-5f);
      }
    }
  }
  /* Bad batch inputs: lengths not multiples of the width, mismatched rows, NULLs,
   * a short workspace, overlaps. */
  EXPECT(simsiam_project_batch(model, zs, n * d_enc - 1, out, n * d_out),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_project_batch(model, zs, n * d_enc, out, n * d_out - d_out),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_predict_batch(model, out, n * d_out - 1, pred, n * d_out),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_predict_batch(model, out, n * d_out, pred, n * d_out - 1),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_project_batch(NULL, zs, n * d_enc, out, n * d_out),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_project_batch(model, NULL, n * d_enc, out, n * d_out),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_predict_batch(model, out, n * d_out, NULL, n * d_out),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_predict_batch(model, out, n * d_out, out, n * d_out), SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc - 1, losses, n, ws, ws_len),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n - 1, ws, ws_len),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, ws, ws_len - 1),
         SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, NULL, n, ws, ws_len),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, NULL, ws_len),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_loss_batch(model, NULL, n * d_enc, zs2, n * d_enc, losses, n, ws, ws_len),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, ws + 1, 2),
         SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, ws, n, ws, ws_len),
         SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, zs2, n * d_enc),
         SIMSIAM_STATUS_OVERLAP);
  test_batch_pointers(model, zs, zs2, out, losses, ws, ws_len, d_enc, d_out, n);
  zs2[5] = NAN;
  EXPECT(simsiam_loss_batch(model, zs, n * d_enc, zs2, n * d_enc, losses, n, ws, ws_len),
         SIMSIAM_STATUS_NON_FINITE);
  free(zs);
  free(zs2);
  free(out);
  free(pred);
  free(single);
  free(single_pred);
  free(losses);
  free(ws);
  free(single_ws);
}

/* The rows of a batch of n pairs: (z1, z2), (z2, z1), (z1, z2), ... */
static void fill_pairs(float *z1s, float *z2s, size_t n, const float *z1, const float *z2,
                       size_t d_enc) {
  for (size_t j = 0; j < n; j++) {
    memcpy(z1s + j * d_enc, j % 2 ? z2 : z1, d_enc * sizeof(float));
    memcpy(z2s + j * d_enc, j % 2 ? z1 : z2, d_enc * sizeof(float));
  }
}

/* simsiam_batch_loss_workspace_len(n) is exactly 4 * d_out * min(n, 8) (pairs go through
 * the weights 8 at a time, 16 inputs), as the header says, and simsiam_loss_batch needs
 * exactly that: it succeeds with that many floats (heap buffers of exactly that size, so
 * valgrind sees any access beyond) and refuses one fewer. On the scalar backend each loss
 * equals the single call bit for bit; on the SIMD backend up to summation order. */
static void test_batch_workspace(const SimsiamModel *model, const float *z1, const float *z2,
                                 size_t d_enc, size_t d_out) {
  static const size_t counts[] = {0, 1, 2, 7, 8, 9, 64};
  const SimsiamConfig other = {7, 9, 10, 5};
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    const size_t n = counts[c], group = n < 8 ? n : 8;
    /* The lane blocks, for two pairs or more. */
    const size_t other_lanes = n >= 2 ? reference_lanes_len(other) : 0;
    const size_t lanes = n >= 2 ? reference_lanes_len(model->config) : 0;
    size_t len = SIZE_MAX;
    EXPECT(simsiam_batch_loss_workspace_len(other, n, &len), SIMSIAM_STATUS_OK);
    CHECK_SIZE(len, 4 * other.d_out * group + other_lanes);
    len = SIZE_MAX;
    EXPECT(simsiam_batch_loss_workspace_len(model->config, n, &len), SIMSIAM_STATUS_OK);
    CHECK_SIZE(len, 4 * d_out * group + lanes);
    if (len != 4 * d_out * group + lanes) continue;
    /* n = 0: nothing to compute, but every pointer must still be valid. */
    const size_t rows = n > 0 ? n : 1;
    float *z1s = alloc_floats(rows * d_enc), *z2s = alloc_floats(rows * d_enc);
    float *losses = alloc_floats(rows), *ws = alloc_floats(len > 0 ? len : 1);
    float *single_ws = alloc_floats(4 * d_out);
    fill_pairs(z1s, z2s, n, z1, z2, d_enc);
    for (uint32_t backend = 0; backend < 2; backend++) {
      SimsiamModel m = *model;
      m.backend = backend;
      EXPECT(simsiam_loss_batch(&m, z1s, n * d_enc, z2s, n * d_enc, losses, n, ws, len),
             SIMSIAM_STATUS_OK);
      for (size_t j = 0; j < n; j++) {
        float loss = SENTINEL;
        EXPECT(simsiam_loss(&m, z1s + j * d_enc, d_enc, z2s + j * d_enc, d_enc, single_ws,
                            4 * d_out, &loss),
               SIMSIAM_STATUS_OK);
        if (backend == SIMSIAM_BACKEND_SCALAR) {
          CHECK(memcmp(&losses[j], &loss, sizeof loss) == 0);
        } else {
          CHECK(fabsf(losses[j] - loss) <= 2e-5f);
        }
      }
      if (len > 0) {
        EXPECT(simsiam_loss_batch(&m, z1s, n * d_enc, z2s, n * d_enc, losses, n, ws, len - 1),
               SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
      }
    }
    free(z1s);
    free(z2s);
    free(losses);
    free(ws);
    free(single_ws);
  }
  size_t len = 7;
  const SimsiamConfig huge_out = {1, 1, 1, SIZE_MAX / 16};
  EXPECT(simsiam_batch_loss_workspace_len(huge_out, 9, &len), SIMSIAM_STATUS_INVALID_PARAMETER);
  CHECK_SIZE(len, 7);
}

static void test_config_errors(void) {
  SimsiamConfig good = simsiam_config_default();
  size_t n = 0;
  for (int field = 0; field < 4; field++) {
    SimsiamConfig bad = good;
    size_t *dims[4] = {&bad.d_encoder, &bad.d_projector, &bad.d_predictor, &bad.d_out};
    *dims[field] = 0;
    n = 7;
    EXPECT(simsiam_param_count(bad, &n), SIMSIAM_STATUS_INVALID_PARAMETER);
    CHECK(n == 7);
    EXPECT(simsiam_loss_workspace_len(bad, &n), SIMSIAM_STATUS_INVALID_PARAMETER);
    float buf[16];
    EXPECT(simsiam_init_params(bad, 1, buf, 16), SIMSIAM_STATUS_INVALID_PARAMETER);
    SimsiamModel model = {.struct_size = sizeof(SimsiamModel)};
    EXPECT(simsiam_model_init(&model, bad, buf, 16), SIMSIAM_STATUS_INVALID_PARAMETER);
  }
  SimsiamConfig huge = {SIZE_MAX, SIZE_MAX, 1, 1};
  EXPECT(simsiam_param_count(huge, &n), SIMSIAM_STATUS_INVALID_PARAMETER);
  SimsiamConfig huge_out = {1, 1, 1, SIZE_MAX};
  EXPECT(simsiam_loss_workspace_len(huge_out, &n), SIMSIAM_STATUS_INVALID_PARAMETER);
  EXPECT(simsiam_param_count(good, NULL), SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_loss_workspace_len(good, NULL), SIMSIAM_STATUS_NULL_POINTER);
  size_t pair[2];
  EXPECT(simsiam_param_count(good, (size_t *)((char *)pair + 1)), SIMSIAM_STATUS_MISALIGNED);
}

/* The reference model's _ws calls: NULL workspace of length 0 (or any workspace) gives
 * the plain calls' results bit for bit; bad workspaces give their status. Then the ABI
 * version checks: an unknown struct_size or kind is refused by every function, which
 * reads nothing of a model but its struct_size until that matches (a model struct of an
 * older, smaller layout is never read beyond). */
static void test_versioning(const SimsiamModel *model, const float *params, size_t count,
                            const float *z1, const float *z2, size_t d_enc, size_t d_out) {
  float *plain = alloc_floats(d_out), *with_ws = alloc_floats(d_out);
  float *pred = alloc_floats(d_out), *pred_ws = alloc_floats(d_out);
  float *ws = alloc_floats(4 * d_out);
  for (uint32_t backend = 0; backend < 2; backend++) {
    SimsiamModel m = *model;
    m.backend = backend;
    EXPECT(simsiam_project(&m, z1, d_enc, plain, d_out), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_project_ws(&m, z1, d_enc, with_ws, d_out, NULL, 0), SIMSIAM_STATUS_OK);
    CHECK(memcmp(plain, with_ws, d_out * sizeof(float)) == 0);
    EXPECT(simsiam_project_ws(&m, z1, d_enc, with_ws, d_out, ws, 4 * d_out), SIMSIAM_STATUS_OK);
    CHECK(memcmp(plain, with_ws, d_out * sizeof(float)) == 0);
    EXPECT(simsiam_predict(&m, plain, d_out, pred, d_out), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_predict_ws(&m, plain, d_out, pred_ws, d_out, NULL, 0), SIMSIAM_STATUS_OK);
    CHECK(memcmp(pred, pred_ws, d_out * sizeof(float)) == 0);
  }
  for (size_t i = 0; i < d_out; i++) with_ws[i] = SENTINEL;
  EXPECT(simsiam_project_ws(model, z1, d_enc, with_ws, d_out, NULL, 5),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_project_ws(model, z1, d_enc, with_ws, d_out, (float *)((char *)ws + 1), 4),
         SIMSIAM_STATUS_MISALIGNED);
  EXPECT(simsiam_project_ws(model, z1, d_enc, with_ws, d_out, with_ws, d_out),
         SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_project_ws(model, z1, d_enc, with_ws, d_out, (float *)z1, d_enc),
         SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_project_ws(model, z1, d_enc, with_ws, d_out, (float *)params + 7, 4),
         SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_project_ws(model, z1, d_enc, with_ws, d_out, ws, SIZE_MAX),
         SIMSIAM_STATUS_DIMENSION_MISMATCH);
  CHECK(all_equal(with_ws, d_out, SENTINEL));

  /* init: a struct_size other than sizeof(SimsiamModel) is refused, nothing written. */
  static const size_t sizes[] = {0, sizeof(SimsiamModel) - 1, sizeof(SimsiamModel) + 8,
                                 (size_t)-1};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    SimsiamModel m;
    memset(&m, 0x3c, sizeof m);
    m.struct_size = sizes[i];
    SimsiamModel copy = m;
    EXPECT(simsiam_model_init(&m, model->config, params, count),
           SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    CHECK(memcmp(&m, &copy, sizeof m) == 0);
  }
  /* Every call refuses a model with another struct_size, or an unknown kind. */
  float *zs = alloc_floats(d_enc), *losses = alloc_floats(1);
  memcpy(zs, z1, d_enc * sizeof(float));
  for (int variant = 0; variant < 6; variant++) {
    SimsiamModel m = *model;
    switch (variant) {
      case 0: m.struct_size = 0; break;
      case 1: m.struct_size = sizeof m - sizeof(size_t); break;
      case 2: m.struct_size = sizeof m + sizeof(size_t); break;
      case 3: m.kind = 0; break;
      case 4: m.kind = SIMSIAM_MODEL_KIND_IMAGE + 1; break;
      default: m.kind = 0xffffffffu; break;
    }
    for (size_t i = 0; i < d_out; i++) with_ws[i] = SENTINEL;
    for (size_t i = 0; i < 4 * d_out; i++) ws[i] = SENTINEL;
    float loss = SENTINEL;
    size_t len = 7, enc = 7, out = 7;
    const SimsiamStatus unsupported = SIMSIAM_STATUS_UNSUPPORTED_VERSION;
    EXPECT(simsiam_project(&m, z1, d_enc, with_ws, d_out), unsupported);
    EXPECT(simsiam_project_ws(&m, z1, d_enc, with_ws, d_out, ws, 4 * d_out), unsupported);
    EXPECT(simsiam_predict(&m, z1, d_out, with_ws, d_out), unsupported);
    EXPECT(simsiam_predict_ws(&m, z1, d_out, with_ws, d_out, ws, 4 * d_out), unsupported);
    EXPECT(simsiam_project_batch(&m, zs, d_enc, with_ws, d_out), unsupported);
    EXPECT(simsiam_project_batch_ws(&m, zs, d_enc, with_ws, d_out, ws, 4 * d_out),
           unsupported);
    EXPECT(simsiam_predict_batch(&m, zs, d_out, with_ws, d_out), unsupported);
    EXPECT(simsiam_predict_batch_ws(&m, zs, d_out, with_ws, d_out, ws, 4 * d_out),
           unsupported);
    EXPECT(simsiam_loss(&m, z1, d_enc, z2, d_enc, ws, 4 * d_out, &loss), unsupported);
    EXPECT(simsiam_loss_batch(&m, z1, d_enc, z2, d_enc, losses, 1, ws, 4 * d_out),
           unsupported);
    EXPECT(simsiam_workspace_len(&m, 1, &len), unsupported);
    EXPECT(simsiam_model_dims(&m, &enc, &out), unsupported);
    CHECK(loss == SENTINEL && len == 7 && enc == 7 && out == 7);
    CHECK(all_equal(with_ws, d_out, SENTINEL) && all_equal(ws, 4 * d_out, SENTINEL));
  }
  /* A model of an older, smaller layout: only its size_t struct_size exists (a heap
   * block of exactly that size, so valgrind sees any read beyond). */
  {
    size_t *tiny = malloc(sizeof(size_t));
    if (tiny == NULL) exit(2);
    *tiny = sizeof(size_t);
    float loss = SENTINEL;
    size_t len = 7;
    const SimsiamModel *old = (const SimsiamModel *)tiny;
    EXPECT(simsiam_project(old, z1, d_enc, with_ws, d_out), SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    EXPECT(simsiam_loss(old, z1, d_enc, z2, d_enc, ws, 4 * d_out, &loss),
           SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    EXPECT(simsiam_workspace_len(old, 1, &len), SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    EXPECT(simsiam_model_init((SimsiamModel *)tiny, model->config, params, count),
           SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    CHECK(*tiny == sizeof(size_t) && len == 7 && loss == SENTINEL);
    free(tiny);
  }
  free(plain);
  free(with_ws);
  free(pred);
  free(pred_ws);
  free(ws);
  free(zs);
  free(losses);
}

/* CRC-32 (IEEE, zlib's), table-driven, to reseal deliberately edited images. */
static uint32_t crc32_bytes(const uint8_t *bytes, size_t n) {
  static uint32_t table[256];
  if (table[1] == 0) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  }
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ bytes[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

static uint32_t read_u32(const uint8_t *bytes) {
  return (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
         (uint32_t)bytes[3] << 24;
}

static void write_u32(uint8_t *bytes, uint32_t value) {
  for (int b = 0; b < 4; b++) bytes[b] = (uint8_t)(value >> (8 * b));
}

/* Rewrites the checksum (bytes 12..16, computed with them as zero) after an edit, so the
 * edit itself is what is tested. */
static void reseal(uint8_t *image, size_t len) {
  write_u32(image + 12, 0);
  write_u32(image + 12, crc32_bytes(image, len));
}

static uint64_t fnv1a_bytes(const uint8_t *bytes, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ bytes[i]) * 0x00000100000001b3ull;
  return h;
}

/* Reads a whole file into a heap block of exactly its size. */
static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  long size = ftell(f);
  if (size <= 0 || fseek(f, 0, SEEK_SET) != 0) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  uint8_t *bytes = malloc((size_t)size);
  if (bytes == NULL || fread(bytes, 1, (size_t)size, f) != (size_t)size) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  *len = (size_t)size;
  return bytes;
}

/* The image scenario's head: official(48, 20, 12), see capi/examples/reference.rs. */
#define IMAGE_D_ENCODER 48
#define IMAGE_D_OUT 20
#define IMAGE_PREV_DIM 48
/* Architecture::lanes_len of the image head: its stages (48 -> 48, 48 -> 48 -> 20,
 * 20 -> pred_dim -> 20) are at most 48 wide in, hidden and out. */
#define IMAGE_LANES (16 * (48 + 48 + 48) + 15)
/* 5 layer records after the 64-byte header, padded to 64 bytes. */
#define IMAGE_HEADER_LEN 256
/* SIMD vs scalar and batch vs single differ by summation order only; the official
 * head's outputs are not unit vectors (BatchNorm ends the projector), values up to
 * about 3. */
#define IMAGE_TOLERANCE 1e-4f

/* Whether flipping bit `bit` of byte `at` of the scenario's image (then resealing it)
 * leaves a valid image of another head: the checksum field (the reseal restores it), the
 * header flags that L2-normalise the projection or the prediction, a layer's ReLU flag,
 * the frozen flag of a layer with a bias (records 2 and 4), and the BatchNorm eps (but
 * its sign) and num_batches_tracked of the four layers with a BatchNorm (records 0 to
 * 3). Every other field changes the parameter count, the widths, the offsets, or must be
 * zero. */
static int flip_keeps_valid(size_t at, int bit) {
  if (at >= 12 && at < 16) return 1;
  if (at == 24) return bit < 2;
  if (at < 64) return 0;
  const size_t record = (at - 64) / 32, field = (at - 64) % 32;
  if (record >= 5) return 0; /* padding */
  if (field == 8) return bit == 4 || (bit == 1 && (record == 2 || record == 4));
  if (record < 4 && field >= 12 && field < 16) return !(field == 15 && bit == 7);
  return record < 4 && field >= 16 && field < 24;
}

/* init_image on `len` bytes at `bytes` must give `want` and leave the model untouched
 * unless it succeeds. */
static void expect_image_status(const uint8_t *bytes, size_t len, SimsiamStatus want,
                                int line) {
  SimsiamModel m;
  memset(&m, 0x77, sizeof m);
  m.struct_size = sizeof m;
  SimsiamModel copy = m;
  SimsiamStatus got = simsiam_model_init_image(&m, bytes, len);
  if (got == want) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "FAIL %s:%d: simsiam_model_init_image -> %d (%s), expected %d\n",
            __FILE__, line, (int)got, simsiam_status_message(got), (int)want);
  }
  if (got != SIMSIAM_STATUS_OK) CHECK(memcmp(&m, &copy, sizeof m) == 0);
}
#define EXPECT_IMAGE(bytes, len, status) expect_image_status(bytes, len, status, __LINE__)

/* Batch calls on the image model equal the single calls (bit for bit on the scalar
 * backend), with workspaces of exactly simsiam_workspace_len(model, n) floats and the
 * documented minimum for the batch forward calls. */
static void test_image_batch(const SimsiamModel *model, const float *z1, const float *z2,
                             size_t n) {
  const size_t d_enc = IMAGE_D_ENCODER, d_out = IMAGE_D_OUT;
  float *z1s = alloc_floats(n * d_enc), *z2s = alloc_floats(n * d_enc);
  fill_pairs(z1s, z2s, n, z1, z2, d_enc);
  float *out = alloc_floats(n * d_out), *pred = alloc_floats(n * d_out);
  float *plain_pred = alloc_floats(n * d_out), *losses = alloc_floats(n);
  float *single = alloc_floats(d_out), *single_pred = alloc_floats(d_out);
  size_t ws_len = 0, single_len = 0;
  EXPECT(simsiam_workspace_len(model, n, &ws_len), SIMSIAM_STATUS_OK);
  const size_t group = n < 8 ? n : 8, inputs = n < 16 ? n : 16;
  CHECK_SIZE(ws_len, group * (4 * d_out + 2 * IMAGE_PREV_DIM) + (n >= 2 ? IMAGE_LANES : 0));
  EXPECT(simsiam_workspace_len(model, 1, &single_len), SIMSIAM_STATUS_OK);
  float *ws = alloc_floats(ws_len), *single_ws = alloc_floats(single_len);
  /* The forward calls: the group's intermediate vectors, and lane blocks for n > 2. */
  const size_t forward_len = inputs * IMAGE_PREV_DIM + (n > 2 ? IMAGE_LANES : 0);
  float *forward_ws = alloc_floats(forward_len);
  for (uint32_t backend = 0; backend < 2; backend++) {
    SimsiamModel m = *model;
    m.backend = backend;
    EXPECT(simsiam_project_batch_ws(&m, z1s, n * d_enc, out, n * d_out, ws, ws_len),
           SIMSIAM_STATUS_OK);
    EXPECT(simsiam_project_batch_ws(&m, z1s, n * d_enc, pred, n * d_out, forward_ws,
                                    forward_len),
           SIMSIAM_STATUS_OK);
    CHECK(memcmp(out, pred, n * d_out * sizeof(float)) == 0);
    EXPECT(simsiam_project_batch_ws(&m, z1s, n * d_enc, pred, n * d_out, forward_ws,
                                    forward_len - 1),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_project_batch(&m, z1s, n * d_enc, pred, n * d_out),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_predict_batch_ws(&m, out, n * d_out, pred, n * d_out, ws, ws_len),
           SIMSIAM_STATUS_OK);
    /* The official predictor has two layers: no workspace needed (then two inputs at a
     * time, the pair path: the same bits on the scalar backend). */
    EXPECT(simsiam_predict_batch(&m, out, n * d_out, plain_pred, n * d_out), SIMSIAM_STATUS_OK);
    if (backend == SIMSIAM_BACKEND_SCALAR) {
      CHECK(memcmp(pred, plain_pred, n * d_out * sizeof(float)) == 0);
    } else {
      CHECK(max_diff(pred, plain_pred, n * d_out) <= IMAGE_TOLERANCE);
    }
    EXPECT(simsiam_loss_batch(&m, z1s, n * d_enc, z2s, n * d_enc, losses, n, ws, ws_len),
           SIMSIAM_STATUS_OK);
    EXPECT(simsiam_loss_batch(&m, z1s, n * d_enc, z2s, n * d_enc, losses, n, ws, ws_len - 1),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    for (size_t j = 0; j < n; j++) {
      float loss = SENTINEL;
      EXPECT(simsiam_project_ws(&m, z1s + j * d_enc, d_enc, single, d_out, single_ws,
                                single_len),
             SIMSIAM_STATUS_OK);
      EXPECT(simsiam_predict_ws(&m, out + j * d_out, d_out, single_pred, d_out, single_ws,
                                single_len),
             SIMSIAM_STATUS_OK);
      EXPECT(simsiam_loss(&m, z1s + j * d_enc, d_enc, z2s + j * d_enc, d_enc, single_ws,
                          single_len, &loss),
             SIMSIAM_STATUS_OK);
      if (backend == SIMSIAM_BACKEND_SCALAR) {
        CHECK(memcmp(out + j * d_out, single, d_out * sizeof(float)) == 0);
        CHECK(memcmp(pred + j * d_out, single_pred, d_out * sizeof(float)) == 0);
        CHECK(memcmp(&losses[j], &loss, sizeof loss) == 0);
      } else {
        CHECK(max_diff(out + j * d_out, single, d_out) <= IMAGE_TOLERANCE);
        CHECK(max_diff(pred + j * d_out, single_pred, d_out) <= IMAGE_TOLERANCE);
        CHECK(fabsf(losses[j] - loss) <= IMAGE_TOLERANCE);
      }
    }
  }
  free(z1s);
  free(z2s);
  free(out);
  free(pred);
  free(plain_pred);
  free(losses);
  free(single);
  free(single_pred);
  free(ws);
  free(single_ws);
  free(forward_ws);
}

/* The image scenario: init from the image file, the scenario's lines on both backends,
 * the calls' workspace rules, batches, and every kind of malformed image. */
static void test_image(const char *path) {
  size_t len = 0;
  uint8_t *image = read_file(path, &len);
  const size_t d_enc = IMAGE_D_ENCODER, d_out = IMAGE_D_OUT;
  CHECK(len > IMAGE_HEADER_LEN && read_u32(image + 16) == IMAGE_HEADER_LEN);
  printf("image.fnv %016llx\n", (unsigned long long)fnv1a_bytes(image, len));

  SimsiamModel model;
  memset(&model, 0xab, sizeof model);
  model.struct_size = sizeof model;
  EXPECT(simsiam_model_init_image(&model, image, len), SIMSIAM_STATUS_OK);
  const SimsiamConfig zero = {0, 0, 0, 0};
  CHECK(model.struct_size == sizeof model && model.kind == SIMSIAM_MODEL_KIND_IMAGE &&
        model.backend == SIMSIAM_BACKEND_SIMD && model.image == image &&
        model.image_len == len);
  CHECK(memcmp(&model.config, &zero, sizeof zero) == 0);
  /* The parameters are viewed in place, right after the header. */
  CHECK(model.params == (const float *)(image + IMAGE_HEADER_LEN) &&
        model.params_len == (len - IMAGE_HEADER_LEN) / sizeof(float));
  size_t enc = 0, out_dim = 0, ws_len = 0;
  EXPECT(simsiam_model_dims(&model, &enc, &out_dim), SIMSIAM_STATUS_OK);
  CHECK_SIZE(enc, d_enc);
  CHECK_SIZE(out_dim, d_out);
  EXPECT(simsiam_workspace_len(&model, 1, &ws_len), SIMSIAM_STATUS_OK);
  CHECK_SIZE(ws_len, 4 * d_out + 2 * IMAGE_PREV_DIM);
  EXPECT(simsiam_workspace_len(&model, 0, &ws_len), SIMSIAM_STATUS_OK);
  CHECK_SIZE(ws_len, 0);
  EXPECT(simsiam_workspace_len(&model, 1000, &ws_len), SIMSIAM_STATUS_OK);
  CHECK_SIZE(ws_len, 8 * (4 * d_out + 2 * IMAGE_PREV_DIM) + IMAGE_LANES);
  const size_t w = 4 * d_out + 2 * IMAGE_PREV_DIM;

  float *z1 = alloc_floats(d_enc), *z2 = alloc_floats(d_enc);
  fill_input(z1, d_enc, 7, 13, 0.75f);
  fill_input(z2, d_enc, 5, 11, 0.625f);
  float *projected = alloc_floats(d_out), *predicted = alloc_floats(d_out);
  float *again = alloc_floats(d_out), *ws = alloc_floats(w);
  float *inter = alloc_floats(IMAGE_PREV_DIM);
  float results[2][2 * IMAGE_D_OUT + 1];
  for (uint32_t backend = 0; backend < 2; backend++) {
    const char *name = backend == SIMSIAM_BACKEND_SIMD ? "simd" : "scalar";
    char key[40];
    float loss = SENTINEL;
    SimsiamModel m = model;
    m.backend = backend;
    EXPECT(simsiam_project_ws(&m, z1, d_enc, projected, d_out, ws, w), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_predict_ws(&m, projected, d_out, predicted, d_out, ws, w),
           SIMSIAM_STATUS_OK);
    EXPECT(simsiam_loss(&m, z1, d_enc, z2, d_enc, ws, w, &loss), SIMSIAM_STATUS_OK);
    CHECK(loss >= -1.0f - 1e-5f && loss <= 1.0f + 1e-5f);
    snprintf(key, sizeof key, "image.project.%s", name);
    print_line(key, projected, d_out);
    snprintf(key, sizeof key, "image.predict.%s", name);
    print_line(key, predicted, d_out);
    snprintf(key, sizeof key, "image.loss.%s", name);
    print_line(key, &loss, 1);
    memcpy(results[backend], projected, d_out * sizeof(float));
    memcpy(results[backend] + d_out, predicted, d_out * sizeof(float));
    results[backend][2 * d_out] = loss;

    /* The projector needs its intermediate vector (prev_dim floats) and no more: the
     * same result from exactly that workspace; one fewer, or none, is too small. */
    for (size_t i = 0; i < d_out; i++) again[i] = SENTINEL;
    EXPECT(simsiam_project_ws(&m, z1, d_enc, again, d_out, inter, IMAGE_PREV_DIM),
           SIMSIAM_STATUS_OK);
    CHECK(memcmp(again, projected, d_out * sizeof(float)) == 0);
    for (size_t i = 0; i < d_out; i++) again[i] = SENTINEL;
    EXPECT(simsiam_project_ws(&m, z1, d_enc, again, d_out, inter, IMAGE_PREV_DIM - 1),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_project_ws(&m, z1, d_enc, again, d_out, NULL, 0),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_project(&m, z1, d_enc, again, d_out), SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    CHECK(all_equal(again, d_out, SENTINEL));
    /* The official predictor has two layers: the plain call and no workspace work. */
    EXPECT(simsiam_predict(&m, projected, d_out, again, d_out), SIMSIAM_STATUS_OK);
    CHECK(memcmp(again, predicted, d_out * sizeof(float)) == 0);
    EXPECT(simsiam_predict_ws(&m, projected, d_out, again, d_out, NULL, 0), SIMSIAM_STATUS_OK);
    CHECK(memcmp(again, predicted, d_out * sizeof(float)) == 0);
    /* The loss needs 4 * d_out + 2 * prev_dim floats. */
    float short_loss = SENTINEL;
    EXPECT(simsiam_loss(&m, z1, d_enc, z2, d_enc, ws, w - 1, &short_loss),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_loss(&m, z1, d_enc, z2, d_enc, ws, 4 * d_out, &short_loss),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    CHECK(short_loss == SENTINEL);
  }
  /* The twins agree up to summation order. */
  CHECK(max_diff(results[0], results[1], 2 * d_out + 1) <= IMAGE_TOLERANCE);

  test_image_batch(&model, z1, z2, 3);
  test_image_batch(&model, z1, z2, 17);

  /* Bad calls on an image model: overlaps with the image, a changed model. */
  {
    float *in_image = (float *)(image + IMAGE_HEADER_LEN) + 3;
    float loss = SENTINEL, losses[1];
    for (size_t i = 0; i < d_out; i++) again[i] = SENTINEL;
    EXPECT(simsiam_project_ws(&model, z1, d_enc, in_image, d_out, ws, w),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_project_ws(&model, z1, d_enc, again, d_out, in_image, w),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_project_ws(&model, z1, d_enc, again, d_out, (float *)image, w),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_predict(&model, projected, d_out, (float *)(image + len - 8), d_out),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss(&model, z1, d_enc, z2, d_enc, in_image, w, &loss),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss(&model, z1, d_enc, z2, d_enc, ws, w, in_image), SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss_batch(&model, z1, d_enc, z2, d_enc, in_image, 1, ws, w),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss_batch(&model, z1, d_enc, z2, d_enc, losses, 1, in_image, w),
           SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_project_ws(&model, z1, d_enc - 1, again, d_out, ws, w),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_predict_ws(&model, projected, d_out, again, d_out + 1, ws, w),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    SimsiamModel bad = model;
    bad.backend = 2;
    EXPECT(simsiam_project_ws(&bad, z1, d_enc, again, d_out, ws, w),
           SIMSIAM_STATUS_INVALID_BACKEND);
    bad = model;
    bad.image = NULL;
    EXPECT(simsiam_project_ws(&bad, z1, d_enc, again, d_out, ws, w),
           SIMSIAM_STATUS_NULL_POINTER);
    bad = model;
    bad.image = image + 2;
    EXPECT(simsiam_project_ws(&bad, z1, d_enc, again, d_out, ws, w), SIMSIAM_STATUS_MISALIGNED);
    bad = model;
    bad.image_len = len - 4;
    EXPECT(simsiam_project_ws(&bad, z1, d_enc, again, d_out, ws, w), SIMSIAM_STATUS_BAD_IMAGE);
    bad.image_len = SIZE_MAX;
    EXPECT(simsiam_project_ws(&bad, z1, d_enc, again, d_out, ws, w),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    bad = model;
    bad.kind = SIMSIAM_MODEL_KIND_REFERENCE; /* its config is all zero */
    EXPECT(simsiam_project_ws(&bad, z1, d_enc, again, d_out, ws, w),
           SIMSIAM_STATUS_INVALID_PARAMETER);
    /* The image changed after init (its magic): the calls refuse it. */
    image[0] ^= 0x20u;
    EXPECT(simsiam_project_ws(&model, z1, d_enc, again, d_out, ws, w), SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT(simsiam_loss(&model, z1, d_enc, z2, d_enc, ws, w, &loss), SIMSIAM_STATUS_BAD_IMAGE);
    image[0] ^= 0x20u;
    CHECK(loss == SENTINEL && all_equal(again, d_out, SENTINEL));
  }

  /* Malformed images: each gives its status and leaves the model untouched. */
  {
    SimsiamModel m;
    memset(&m, 0x11, sizeof m);
    m.struct_size = sizeof m - 1;
    SimsiamModel copy = m;
    EXPECT(simsiam_model_init_image(&m, image, len), SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    CHECK(memcmp(&m, &copy, sizeof m) == 0);
    EXPECT(simsiam_model_init_image(NULL, image, len), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT_IMAGE(NULL, len, SIMSIAM_STATUS_NULL_POINTER);
    EXPECT_IMAGE(image, 0, SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT_IMAGE(image, 63, SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT_IMAGE(image, IMAGE_HEADER_LEN, SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT_IMAGE(image, len - 1, SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT_IMAGE(image, len - 4, SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT_IMAGE(image, SIZE_MAX, SIMSIAM_STATUS_DIMENSION_MISMATCH);
    /* Trailing bytes, and the image at addresses that are not 4-byte aligned. */
    uint8_t *spare = malloc(len + 4);
    if (spare == NULL) exit(2);
    memcpy(spare, image, len);
    memset(spare + len, 0, 4);
    EXPECT_IMAGE(spare, len, SIMSIAM_STATUS_OK);
    EXPECT_IMAGE(spare, len + 1, SIMSIAM_STATUS_BAD_IMAGE);
    EXPECT_IMAGE(spare, len + 4, SIMSIAM_STATUS_BAD_IMAGE);
    for (size_t offset = 1; offset < 4; offset++) {
      memmove(spare + offset, image, len);
      EXPECT_IMAGE(spare + offset, len, SIMSIAM_STATUS_MISALIGNED);
    }
    free(spare);

    /* Header edits, resealed so that the edit itself is what is refused. */
    uint8_t *bad = malloc(len);
    if (bad == NULL) exit(2);
    memcpy(bad, image, len);
    bad[0] = 'X';
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_BAD_IMAGE); /* magic, not resealed */
    reseal(bad, len);
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_BAD_IMAGE);
    memcpy(bad, image, len);
    write_u32(bad + 8, 3); /* format version 3: newer than this build reads */
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    reseal(bad, len);
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_UNSUPPORTED_VERSION);
    memcpy(bad, image, len);
    write_u32(bad + 12, read_u32(image + 12) ^ 1u); /* the checksum itself */
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_BAD_IMAGE);
    memcpy(bad, image, len);
    write_u32(bad + 64, IMAGE_D_ENCODER + 1); /* layer 0's d_in */
    reseal(bad, len);
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_BAD_IMAGE);
    memcpy(bad, image, len);
    write_u32(bad + IMAGE_HEADER_LEN + 4 * 5, 0x7fc00000u); /* a NaN parameter */
    reseal(bad, len);
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_NON_FINITE);
    memcpy(bad, image, len);
    write_u32(bad + len - 4, 0x7f800000u); /* an infinite one, the last */
    reseal(bad, len);
    EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_NON_FINITE);

    /* Every single-bit change of the header and layer table, resealed: refused as
     * BAD_IMAGE (UNSUPPORTED_VERSION in the version field), except where the image
     * describes another valid head (flip_keeps_valid), whose model then runs (valgrind
     * sees every access). */
    int accepted = 0;
    memcpy(bad, image, len);
    for (size_t at = 0; at < IMAGE_HEADER_LEN; at++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(bad, image, IMAGE_HEADER_LEN);
        bad[at] ^= (uint8_t)(1u << bit);
        reseal(bad, len);
        SimsiamModel flipped = {.struct_size = sizeof(SimsiamModel)};
        SimsiamStatus got = simsiam_model_init_image(&flipped, bad, len);
        SimsiamStatus want = SIMSIAM_STATUS_BAD_IMAGE;
        if (flip_keeps_valid(at, bit)) want = SIMSIAM_STATUS_OK;
        if (at >= 8 && at < 12) want = SIMSIAM_STATUS_UNSUPPORTED_VERSION;
        if (got != want) {
          failed++;
          fprintf(stderr, "FAIL %s:%d: byte %zu bit %d flipped: status %d, expected %d\n",
                  __FILE__, __LINE__, at, bit, (int)got, (int)want);
          continue;
        }
        passed++;
        if (got == SIMSIAM_STATUS_OK) {
          accepted++;
          float loss = SENTINEL;
          SimsiamStatus run = simsiam_loss(&flipped, z1, d_enc, z2, d_enc, ws, w, &loss);
          CHECK(run == SIMSIAM_STATUS_OK || run == SIMSIAM_STATUS_NON_FINITE);
        }
      }
    }
    CHECK(accepted == 4 * 8 + 2 + 5 + 2 + 4 * (4 * 8 - 1) + 4 * 8 * 8);
    /* Every single-bit change of the parameters (sampled), not resealed: a checksum
     * mismatch. */
    for (size_t at = IMAGE_HEADER_LEN; at < len; at += 61) {
      memcpy(bad, image, len);
      bad[at] ^= (uint8_t)(1u << (at % 8));
      EXPECT_IMAGE(bad, len, SIMSIAM_STATUS_BAD_IMAGE);
    }
    free(bad);
  }
  free(z1);
  free(z2);
  free(projected);
  free(predicted);
  free(again);
  free(ws);
  free(inter);
  free(image);
}

/* The scenario's reference head as a parameter image: its image model has the same
 * parameters and gives the reference model's results bit for bit, through the calls
 * without workspace too (the reference head's stacks have two layers). */
static void test_reference_image(const char *path, const SimsiamModel *reference,
                                 const float *z1, const float *z2, size_t d_enc,
                                 size_t d_out) {
  size_t len = 0;
  uint8_t *image = read_file(path, &len);
  SimsiamModel model = {.struct_size = sizeof(SimsiamModel)};
  EXPECT(simsiam_model_init_image(&model, image, len), SIMSIAM_STATUS_OK);
  CHECK(model.kind == SIMSIAM_MODEL_KIND_IMAGE && model.params_len == reference->params_len);
  CHECK(model.params_len == reference->params_len &&
        memcmp(model.params, reference->params, model.params_len * sizeof(float)) == 0);
  size_t enc = 0, out_dim = 0, ws_len = 0, want = 0;
  EXPECT(simsiam_model_dims(&model, &enc, &out_dim), SIMSIAM_STATUS_OK);
  CHECK(enc == d_enc && out_dim == d_out);
  EXPECT(simsiam_workspace_len(&model, 5, &ws_len), SIMSIAM_STATUS_OK);
  EXPECT(simsiam_workspace_len(reference, 5, &want), SIMSIAM_STATUS_OK);
  CHECK_SIZE(ws_len, want);
  const size_t n = 5;
  float *z1s = alloc_floats(n * d_enc), *z2s = alloc_floats(n * d_enc);
  fill_pairs(z1s, z2s, n, z1, z2, d_enc);
  /* [0]: the image model's results, [1]: the reference model's. */
  float *got[2][4], losses[2][5], loss[2];
  float *ws = alloc_floats(want);
  for (int k = 0; k < 2; k++) {
    got[k][0] = alloc_floats(d_out);
    got[k][1] = alloc_floats(d_out);
    got[k][2] = alloc_floats(n * d_out);
    got[k][3] = alloc_floats(n * d_out);
  }
  for (uint32_t backend = 0; backend < 2; backend++) {
    for (int k = 0; k < 2; k++) {
      SimsiamModel m = k == 0 ? model : *reference;
      m.backend = backend;
      EXPECT(simsiam_project(&m, z1, d_enc, got[k][0], d_out), SIMSIAM_STATUS_OK);
      EXPECT(simsiam_predict(&m, got[k][0], d_out, got[k][1], d_out), SIMSIAM_STATUS_OK);
      EXPECT(simsiam_project_batch(&m, z1s, n * d_enc, got[k][2], n * d_out),
             SIMSIAM_STATUS_OK);
      EXPECT(simsiam_predict_batch(&m, got[k][2], n * d_out, got[k][3], n * d_out),
             SIMSIAM_STATUS_OK);
      EXPECT(simsiam_loss(&m, z1, d_enc, z2, d_enc, ws, 4 * d_out, &loss[k]),
             SIMSIAM_STATUS_OK);
      EXPECT(simsiam_loss_batch(&m, z1s, n * d_enc, z2s, n * d_enc, losses[k], n, ws, want),
             SIMSIAM_STATUS_OK);
    }
    CHECK(memcmp(got[0][0], got[1][0], d_out * sizeof(float)) == 0);
    CHECK(memcmp(got[0][1], got[1][1], d_out * sizeof(float)) == 0);
    CHECK(memcmp(got[0][2], got[1][2], n * d_out * sizeof(float)) == 0);
    CHECK(memcmp(got[0][3], got[1][3], n * d_out * sizeof(float)) == 0);
    CHECK(memcmp(&loss[0], &loss[1], sizeof loss[0]) == 0);
    CHECK(memcmp(losses[0], losses[1], sizeof losses[0]) == 0);
  }
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < 4; i++) free(got[k][i]);
  free(z1s);
  free(z2s);
  free(ws);
  free(image);
}

/* Issue 22's calls: the hapt-mcu network's sizes, init, encode and training step, the
 * augmentations and the few-shot classifier, with their bad inputs. */
static void test_ssl(void) {
  SimsiamHarDense net = simsiam_har_dense_mcu();
  SimsiamNetworkSizes sizes, one;
  EXPECT(simsiam_har_dense_sizes(&net, 4, &sizes), SIMSIAM_STATUS_OK);
  EXPECT(simsiam_har_dense_sizes(&net, 1, &one), SIMSIAM_STATUS_OK);
  CHECK_SIZE(sizes.param_count, 10784);
  CHECK_SIZE(sizes.d_input, 192);
  CHECK_SIZE(sizes.d_feature, 32);
  EXPECT(simsiam_har_dense_sizes(NULL, 4, &sizes), SIMSIAM_STATUS_NULL_POINTER);
  SimsiamHarDense zero = net;
  zero.hidden = 0;
  EXPECT(simsiam_har_dense_sizes(&zero, 4, &sizes), SIMSIAM_STATUS_INVALID_PARAMETER);

  size_t count = sizes.param_count, d = sizes.d_input;
  float *params = alloc_floats(count), *momentum = alloc_floats(count);
  float *scratch = alloc_floats(sizes.train_scratch_len);
  float *ws = alloc_floats(one.encode_workspace_len);
  float *raw = alloc_floats(4 * d), *x1 = alloc_floats(4 * d), *x2 = alloc_floats(4 * d);
  float feature[32], mean[6] = {0, 0, 0, 0, 0, 0}, std[6] = {1, 1, 1, 1, 1, 1};
  for (size_t i = 0; i < 4 * d; i++) raw[i] = (float)((i * 37u) % 101u) / 50.0f - 1.0f;
  EXPECT(simsiam_har_dense_init(&net, 22, params, count), SIMSIAM_STATUS_OK);
  EXPECT(simsiam_har_dense_init(&net, 22, params, count - 1), SIMSIAM_STATUS_DIMENSION_MISMATCH);
  EXPECT(simsiam_har_dense_encode(&net, SIMSIAM_BACKEND_SCALAR, params, count, raw, d, feature,
                                  32, ws, one.encode_workspace_len),
         SIMSIAM_STATUS_OK);
  int relu = 1;
  for (int i = 0; i < 32; i++) relu &= feature[i] >= 0.0f;
  CHECK(relu);
  EXPECT(simsiam_har_dense_encode(&net, 7, params, count, raw, d, feature, 32, ws,
                                  one.encode_workspace_len),
         SIMSIAM_STATUS_INVALID_PARAMETER);
  EXPECT(simsiam_har_dense_encode(&net, SIMSIAM_BACKEND_SCALAR, params, count, raw, d, feature,
                                  32, ws, 1),
         SIMSIAM_STATUS_CAPACITY_TOO_SMALL);

  /* Views: the same generator state gives the same views; the state advances. */
  uint32_t state[4], again[4];
  EXPECT(simsiam_rng_seed(42, state), SIMSIAM_STATUS_OK);
  memcpy(again, state, sizeof state);
  SimsiamViewRecipe recipe = simsiam_view_recipe_hapt();
  for (int k = 0; k < 4; k++) {
    EXPECT(simsiam_two_views(raw + k * d, 6, 32, mean, std, recipe, state, x1 + k * d,
                             x2 + k * d),
           SIMSIAM_STATUS_OK);
  }
  CHECK(memcmp(state, again, sizeof state) != 0);
  CHECK(memcmp(x1, x2, d * sizeof(float)) != 0);
  float *view = alloc_floats(2 * d);
  EXPECT(simsiam_two_views(raw, 6, 32, mean, std, recipe, again, view, view + d),
         SIMSIAM_STATUS_OK);
  CHECK(memcmp(view, x1, d * sizeof(float)) == 0 && memcmp(view + d, x2, d * sizeof(float)) == 0);
  EXPECT(simsiam_two_views(raw, 6, 32, mean, std, recipe, again, view, view + 1),
         SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_two_views(raw, 6, 32, mean, std, recipe, NULL, view, view + d),
         SIMSIAM_STATUS_NULL_POINTER);
  uint32_t zero_state[4] = {0, 0, 0, 0}, word = 0;
  EXPECT(simsiam_rng_next_u32(zero_state, &word), SIMSIAM_STATUS_INVALID_PARAMETER);
  EXPECT(simsiam_rng_next_u32(state, &word), SIMSIAM_STATUS_OK);
  CHECK(simsiam_cosine_lr(0.05f, 0, 10) == 0.05f && simsiam_cosine_lr(0.05f, 10, 10) == 0.0f);
  EXPECT(simsiam_standardize(view, 6, 32, mean, std), SIMSIAM_STATUS_OK);

  /* Two training steps at batch 4: losses in [-1, 1], the parameters move. */
  float loss = 2.0f, first = params[0];
  for (uint64_t step = 0; step < 2; step++) {
    EXPECT(simsiam_har_dense_train_step(&net, SIMSIAM_BACKEND_SCALAR, params, count, momentum,
                                        count, step, 0.05f, x1, x2, 4 * d, scratch,
                                        sizes.train_scratch_len, &loss),
           SIMSIAM_STATUS_OK);
    CHECK(loss >= -1.0f && loss <= 1.0f);
  }
  CHECK(params[0] != first);
  EXPECT(simsiam_har_dense_train_step(&net, SIMSIAM_BACKEND_SCALAR, params, count, momentum,
                                      count, 2, 0.05f, x1, x2, d, scratch,
                                      sizes.train_scratch_len, &loss),
         SIMSIAM_STATUS_INVALID_PARAMETER); /* one pair: BatchNorm needs two */
  EXPECT(simsiam_har_dense_train_step(&net, SIMSIAM_BACKEND_SCALAR, params, count, NULL, count,
                                      2, 0.05f, x1, x2, 4 * d, scratch,
                                      sizes.train_scratch_len, &loss),
         SIMSIAM_STATUS_NULL_POINTER);
  EXPECT(simsiam_har_dense_train_step(&net, SIMSIAM_BACKEND_SCALAR, params, count, momentum,
                                      count, 2, 0.05f, params, x2, 4 * d, scratch,
                                      sizes.train_scratch_len, &loss),
         SIMSIAM_STATUS_OVERLAP);
  EXPECT(simsiam_har_dense_train_step(&net, SIMSIAM_BACKEND_SCALAR, params, count, momentum,
                                      count, 2, -1.0f, x1, x2, 4 * d, scratch,
                                      sizes.train_scratch_len, &loss),
         SIMSIAM_STATUS_INVALID_PARAMETER);

  /* The few-shot classifier (the example of simsiam::fewshot). */
  size_t len = 0, predicted = 9;
  float storage[14];
  EXPECT(simsiam_fewshot_storage_len(2, 3, &len), SIMSIAM_STATUS_OK);
  CHECK_SIZE(len, 14);
  EXPECT(simsiam_fewshot_init(2, 3, storage, 14), SIMSIAM_STATUS_OK);
  EXPECT(simsiam_fewshot_predict(2, 3, storage, 14, (float[]){0, 0}, &predicted),
         SIMSIAM_STATUS_INVALID_PARAMETER); /* nothing added yet */
  const float points[5][2] = {{0, 0}, {0.2f, 0}, {5, 1}, {5, 1.2f}, {0, 9}};
  const size_t labels[5] = {0, 0, 1, 1, 2};
  for (int i = 0; i < 5; i++) {
    EXPECT(simsiam_fewshot_add(2, 3, storage, 14, points[i], labels[i]), SIMSIAM_STATUS_OK);
  }
  EXPECT(simsiam_fewshot_add(2, 3, storage, 14, points[0], 3), SIMSIAM_STATUS_INVALID_PARAMETER);
  EXPECT(simsiam_fewshot_predict(2, 3, storage, 14, (float[]){4, 1}, &predicted),
         SIMSIAM_STATUS_OK);
  CHECK_SIZE(predicted, 1);
  EXPECT(simsiam_fewshot_predict(2, 3, storage, 14, (float[]){0.1f, 8}, &predicted),
         SIMSIAM_STATUS_OK);
  CHECK_SIZE(predicted, 2);
  storage[13] += 1.0f; /* the total count no longer the classes' sum */
  EXPECT(simsiam_fewshot_predict(2, 3, storage, 14, (float[]){4, 1}, &predicted),
         SIMSIAM_STATUS_INVALID_PARAMETER);
  EXPECT(simsiam_fewshot_add(2, 3, storage, 14, storage, 0), SIMSIAM_STATUS_OVERLAP);
  free(params);
  free(momentum);
  free(scratch);
  free(ws);
  free(raw);
  free(x1);
  free(x2);
  free(view);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr,
            "usage: %s OFFICIAL REFERENCE (the files `reference write-image PATH official` "
            "and `reference write-image PATH reference` write)\n",
            argv[0]);
    return 2;
  }
  CHECK(simsiam_abi_version() == SIMSIAM_ABI_VERSION);
  /* Normal use. */
  SimsiamConfig config = simsiam_config_default();
  CHECK(config.d_encoder == 64 && config.d_projector == 128 && config.d_predictor == 64 &&
        config.d_out == 32);
  size_t count = 0, ws_len = 0;
  EXPECT(simsiam_param_count(config, &count), SIMSIAM_STATUS_OK);
  CHECK(count == 16640);
  EXPECT(simsiam_loss_workspace_len(config, &ws_len), SIMSIAM_STATUS_OK);
  CHECK(ws_len == 4 * config.d_out);
  const size_t d_enc = config.d_encoder, d_out = config.d_out;

  float *params = alloc_floats(count);
  EXPECT(simsiam_init_params(config, 42, params, count), SIMSIAM_STATUS_OK);
  printf("params.fnv %016llx\n", (unsigned long long)fnv1a(params, count));

  SimsiamModel model;
  memset(&model, 0xab, sizeof model);
  model.struct_size = sizeof model;
  EXPECT(simsiam_model_init(&model, config, params, count), SIMSIAM_STATUS_OK);
  CHECK(model.struct_size == sizeof model && model.kind == SIMSIAM_MODEL_KIND_REFERENCE);
  CHECK(model.params == params && model.params_len == count &&
        model.backend == SIMSIAM_BACKEND_SIMD);
  CHECK(model.image == NULL && model.image_len == 0);
  CHECK(memcmp(&model.config, &config, sizeof config) == 0);
  {
    size_t enc = 0, out = 0, len = 0, want = 0;
    EXPECT(simsiam_model_dims(&model, &enc, &out), SIMSIAM_STATUS_OK);
    CHECK_SIZE(enc, 64);
    CHECK_SIZE(out, 32);
    EXPECT(simsiam_model_dims(&model, &enc, NULL), SIMSIAM_STATUS_NULL_POINTER);
    enc = 7;
    EXPECT(simsiam_model_dims(&model, &enc, (size_t *)((char *)&out + 1)),
           SIMSIAM_STATUS_MISALIGNED);
    CHECK_SIZE(enc, 7);
    /* The reference head's workspace for any call is the batch loss's. */
    static const size_t counts[] = {0, 1, 3, 8, 9, 64};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
      EXPECT(simsiam_workspace_len(&model, counts[c], &len), SIMSIAM_STATUS_OK);
      EXPECT(simsiam_batch_loss_workspace_len(config, counts[c], &want), SIMSIAM_STATUS_OK);
      CHECK_SIZE(len, want);
    }
    EXPECT(simsiam_workspace_len(&model, 1, NULL), SIMSIAM_STATUS_NULL_POINTER);
  }

  float *z1 = alloc_floats(d_enc), *z2 = alloc_floats(d_enc);
  fill_input(z1, d_enc, 7, 13, 0.75f);
  fill_input(z2, d_enc, 5, 11, 0.625f);
  run_backend(model, SIMSIAM_BACKEND_SIMD, "simd", z1, z2, d_enc, d_out);
  run_backend(model, SIMSIAM_BACKEND_SCALAR, "scalar", z1, z2, d_enc, d_out);

  /* A workspace longer than needed is fine. */
  {
    float *big = alloc_floats(4 * d_out + 3);
    float loss = SENTINEL;
    EXPECT(simsiam_loss(&model, z1, d_enc, z2, d_enc, big, 4 * d_out + 3, &loss),
           SIMSIAM_STATUS_OK);
    free(big);
  }

  /* The identity predictor, on a copy of the parameters. */
  {
    float *identity = alloc_floats(count);
    memcpy(identity, params, count * sizeof(float));
    EXPECT(simsiam_set_identity_predictor(config, identity, count), SIMSIAM_STATUS_OK);
    SimsiamModel id_model = {.struct_size = sizeof(SimsiamModel)};
    EXPECT(simsiam_model_init(&id_model, config, identity, count), SIMSIAM_STATUS_OK);
    float *p = alloc_floats(d_out), *q = alloc_floats(d_out), *ws = alloc_floats(4 * d_out);
    float loss = SENTINEL;
    EXPECT(simsiam_project(&id_model, z1, d_enc, p, d_out), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_predict(&id_model, p, d_out, q, d_out), SIMSIAM_STATUS_OK);
    float worst = 0.0f;
    for (size_t i = 0; i < d_out; i++) worst = fmaxf(worst, fabsf(p[i] - q[i]));
    CHECK(worst <= 1e-6f);
    EXPECT(simsiam_loss(&id_model, z1, d_enc, z1, d_enc, ws, 4 * d_out, &loss),
           SIMSIAM_STATUS_OK);
    CHECK(fabsf(loss + 1.0f) <= 1e-5f);
    /* The projector part is unchanged. */
    CHECK(memcmp(identity, params, (64 * 128 + 128 + 128 * 32 + 32) * sizeof(float)) == 0);
    free(p);
    free(q);
    free(ws);
    free(identity);
  }

  /* Batch: 3 rows (z1, z2, z1) equal single calls up to summation order (bit for bit on
   * the scalar backend); the batch workspace length is exact. */
  test_batch(&model, z1, z2, d_enc, d_out);
  test_batch_workspace(&model, z1, z2, d_enc, d_out);

  /* Bad inputs. */
  test_config_errors();
  test_ssl();

  /* init_params: NULL, wrong lengths, misaligned. */
  {
    float *spare = alloc_floats(count + 1);
    EXPECT(simsiam_init_params(config, 42, NULL, count), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_init_params(config, 42, spare, count - 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_init_params(config, 42, spare, count + 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_init_params(config, 42, spare, 0), SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_init_params(config, 42, spare, SIZE_MAX),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_init_params(config, 42, (float *)((char *)spare + 1), 8),
           SIMSIAM_STATUS_MISALIGNED);
    free(spare);
  }

  /* model_init: NULL, wrong lengths, non-finite parameters; the model is untouched. */
  {
    SimsiamModel untouched;
    memset(&untouched, 0x5a, sizeof untouched);
    untouched.struct_size = sizeof untouched;
    SimsiamModel copy = untouched;
    float *spare = alloc_floats(count + 1);
    memcpy(spare, params, count * sizeof(float));
    spare[count] = 0.0f;
    EXPECT(simsiam_model_init(NULL, config, params, count), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_model_init(&untouched, config, NULL, count), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_model_init(&untouched, config, spare, count - 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_model_init(&untouched, config, spare, count + 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_model_init(&untouched, config, spare, SIZE_MAX),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_model_init(&untouched, config, (float *)((char *)spare + 2), count - 1),
           SIMSIAM_STATUS_MISALIGNED);
    spare[100] = NAN;
    EXPECT(simsiam_model_init(&untouched, config, spare, count), SIMSIAM_STATUS_NON_FINITE);
    spare[100] = INFINITY;
    EXPECT(simsiam_model_init(&untouched, config, spare, count), SIMSIAM_STATUS_NON_FINITE);
    spare[100] = -INFINITY;
    EXPECT(simsiam_set_identity_predictor(config, spare, count), SIMSIAM_STATUS_NON_FINITE);
    CHECK(memcmp(&untouched, &copy, sizeof copy) == 0);
    free(spare);
  }

  /* project / predict: every pointer NULL, every length wrong, NaN input, overlap,
   * misalignment, bad backend, a model changed after init. Outputs stay untouched. */
  {
    float *z = alloc_floats(d_enc + 1);
    memcpy(z, z1, d_enc * sizeof(float));
    z[d_enc] = 0.0f;
    float *out = alloc_floats(d_out + 1);
    for (size_t i = 0; i <= d_out; i++) out[i] = SENTINEL;
    EXPECT(simsiam_project(NULL, z, d_enc, out, d_out), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_project(&model, NULL, d_enc, out, d_out), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_project(&model, z, d_enc, NULL, d_out), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_project(&model, z, d_enc - 1, out, d_out),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_project(&model, z, d_enc + 1, out, d_out),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_project(&model, z, 0, out, d_out), SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_project(&model, z, SIZE_MAX, out, d_out),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_project(&model, z, d_enc, out, d_out - 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_project(&model, z, d_enc, out, d_out + 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_project(&model, z, d_enc, out, 0), SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_predict(&model, z, d_out - 1, out, d_out),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_predict(&model, z, d_out + 1, out, d_out),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_predict(&model, z, d_out, out, d_out + 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_predict(NULL, z, d_out, out, d_out), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_predict(&model, NULL, d_out, out, d_out), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_predict(&model, z, d_out, NULL, d_out), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_project(&model, (float *)((char *)z + 1), d_enc - 1, out, d_out),
           SIMSIAM_STATUS_MISALIGNED);
    EXPECT(simsiam_project(&model, z, d_enc, (float *)((char *)out + 1), d_out - 1),
           SIMSIAM_STATUS_MISALIGNED);
    EXPECT(simsiam_project(&model, z, d_enc, z + 1, d_out), SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_predict(&model, z, d_out, z, d_out), SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_project(&model, z, d_enc, params + 10, d_out), SIMSIAM_STATUS_OVERLAP);
    z[3] = NAN;
    EXPECT(simsiam_project(&model, z, d_enc, out, d_out), SIMSIAM_STATUS_NON_FINITE);
    EXPECT(simsiam_predict(&model, z, d_out, out, d_out), SIMSIAM_STATUS_NON_FINITE);
    z[3] = INFINITY;
    EXPECT(simsiam_project(&model, z, d_enc, out, d_out), SIMSIAM_STATUS_NON_FINITE);
    z[3] = z1[3];
    CHECK(all_equal(out, d_out + 1, SENTINEL));
    /* Finite but huge input: the projection overflows (and `out` holds what it gave). */
    {
      float *big = alloc_floats(d_enc);
      for (size_t i = 0; i < d_enc; i++) big[i] = 3e38f;
      EXPECT(simsiam_project(&model, big, d_enc, out, d_out), SIMSIAM_STATUS_NON_FINITE);
      free(big);
      for (size_t i = 0; i <= d_out; i++) out[i] = SENTINEL;
    }

    SimsiamModel bad = model;
    bad.backend = 7;
    EXPECT(simsiam_project(&bad, z, d_enc, out, d_out), SIMSIAM_STATUS_INVALID_BACKEND);
    bad = model;
    bad.params_len = count - 1;
    EXPECT(simsiam_project(&bad, z, d_enc, out, d_out), SIMSIAM_STATUS_DIMENSION_MISMATCH);
    bad = model;
    bad.params = NULL;
    EXPECT(simsiam_project(&bad, z, d_enc, out, d_out), SIMSIAM_STATUS_NULL_POINTER);
    bad = model;
    bad.config.d_projector = 0;
    EXPECT(simsiam_project(&bad, z, d_enc, out, d_out), SIMSIAM_STATUS_INVALID_PARAMETER);
    bad = model;
    bad.config.d_out = 0;
    EXPECT(simsiam_predict(&bad, z, 0, out, 0), SIMSIAM_STATUS_INVALID_PARAMETER);
    EXPECT(simsiam_project((const SimsiamModel *)((char *)&model + 1), z, d_enc, out, d_out),
           SIMSIAM_STATUS_MISALIGNED);
    CHECK(all_equal(out, d_out + 1, SENTINEL));
    free(z);
    free(out);
  }

  /* loss: every pointer NULL, wrong lengths, short workspace, overlap, non-finite. */
  {
    float *a = alloc_floats(d_enc + 1), *b = alloc_floats(d_enc + 1);
    memcpy(a, z1, d_enc * sizeof(float));
    memcpy(b, z2, d_enc * sizeof(float));
    a[d_enc] = b[d_enc] = 0.0f;
    float *ws = alloc_floats(4 * d_out);
    for (size_t i = 0; i < 4 * d_out; i++) ws[i] = SENTINEL;
    float loss = SENTINEL;
    const size_t w = 4 * d_out;
    EXPECT(simsiam_loss(NULL, a, d_enc, b, d_enc, ws, w, &loss), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_loss(&model, NULL, d_enc, b, d_enc, ws, w, &loss),
           SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_loss(&model, a, d_enc, NULL, d_enc, ws, w, &loss),
           SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, NULL, w, &loss),
           SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, w, NULL), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_loss(&model, a, d_enc - 1, b, d_enc, ws, w, &loss),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc + 1, ws, w, &loss),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_loss(&model, a, 0, b, d_enc, ws, w, &loss),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, w - 1, &loss),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, 0, &loss),
           SIMSIAM_STATUS_CAPACITY_TOO_SMALL);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, SIZE_MAX, &loss),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, a, d_enc, &loss), SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, w, ws + 5), SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, w, b), SIMSIAM_STATUS_OVERLAP);
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, w, (float *)((char *)&loss + 1)),
           SIMSIAM_STATUS_MISALIGNED);
    CHECK(all_equal(ws, w, SENTINEL));
    b[0] = NAN;
    EXPECT(simsiam_loss(&model, a, d_enc, b, d_enc, ws, w, &loss), SIMSIAM_STATUS_NON_FINITE);
    SimsiamModel bad = model;
    bad.backend = 2;
    b[0] = z2[0];
    EXPECT(simsiam_loss(&bad, a, d_enc, b, d_enc, ws, w, &loss),
           SIMSIAM_STATUS_INVALID_BACKEND);
    CHECK(loss == SENTINEL);
    free(a);
    free(b);
    free(ws);
  }

  /* Identity predictor: d_predictor != 2 * d_out, NULL, wrong length, zero dims. */
  {
    float *spare = alloc_floats(count + 1);
    memcpy(spare, params, count * sizeof(float));
    SimsiamConfig odd = {8, 16, 8, 8};
    size_t odd_count = 0;
    EXPECT(simsiam_param_count(odd, &odd_count), SIMSIAM_STATUS_OK);
    EXPECT(simsiam_set_identity_predictor(odd, spare, odd_count),
           SIMSIAM_STATUS_INVALID_PARAMETER);
    EXPECT(simsiam_set_identity_predictor(config, NULL, count), SIMSIAM_STATUS_NULL_POINTER);
    EXPECT(simsiam_set_identity_predictor(config, spare, count + 1),
           SIMSIAM_STATUS_DIMENSION_MISMATCH);
    SimsiamConfig zero = config;
    zero.d_out = 0;
    EXPECT(simsiam_set_identity_predictor(zero, spare, count),
           SIMSIAM_STATUS_INVALID_PARAMETER);
    CHECK(memcmp(spare, params, count * sizeof(float)) == 0);
    free(spare);
  }

  test_versioning(&model, params, count, z1, z2, d_enc, d_out);
  test_image(argv[1]);
  test_reference_image(argv[2], &model, z1, z2, d_enc, d_out);

  /* Every status has a message, unknown codes too. */
  for (int code = -1; code <= SIMSIAM_STATUS_BAD_IMAGE + 1; code++) {
    const char *message = simsiam_status_message(code);
    CHECK(message != NULL && strlen(message) > 0);
  }
  CHECK(strcmp(simsiam_status_message(SIMSIAM_STATUS_OK), "ok") == 0);
  CHECK(strcmp(simsiam_status_message(99), "unknown status code") == 0);
  CHECK(strcmp(simsiam_status_message(SIMSIAM_STATUS_BAD_IMAGE + 1), "unknown status code") == 0);
  CHECK(strcmp(simsiam_status_message(SIMSIAM_STATUS_UNKNOWN), "unknown status code") != 0);

  free(z1);
  free(z2);
  free(params);
  fprintf(stderr, "capi_test: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
