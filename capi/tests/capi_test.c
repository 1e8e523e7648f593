/* Host test of the simsiam C ABI, linked against the static library (see
 * .ci/steps/50-capi.sh, which runs it under valgrind).
 *
 * Normal use: prints the scenario's lines (`params.fnv`, then `key hex-bits...` for each
 * twin, see capi/examples/reference.rs) on stdout, which `reference compare` checks
 * against the Rust API: every line once, every float bit for bit. The batch workspace
 * length must be exactly 4 * d_out * min(n, 8), and enough. Bad inputs: every NULL pointer, wrong length, zero
 * dimension, non-finite value, overlap, misalignment and bad backend must give its status
 * code and leave the outputs untouched. Ends with `N passed, N failed` on stderr and
 * exits non-zero on any failure. Heap buffers are sized exactly so that valgrind sees any
 * out-of-bounds access. */
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
  CHECK_SIZE(ws_len, 4 * d_out * n); /* n = 3 <= 8 pairs: one group */
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
    size_t len = SIZE_MAX;
    EXPECT(simsiam_batch_loss_workspace_len(other, n, &len), SIMSIAM_STATUS_OK);
    CHECK_SIZE(len, 4 * other.d_out * group);
    len = SIZE_MAX;
    EXPECT(simsiam_batch_loss_workspace_len(model->config, n, &len), SIMSIAM_STATUS_OK);
    CHECK_SIZE(len, 4 * d_out * group);
    if (len != 4 * d_out * group) continue;
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
    SimsiamModel model;
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

int main(void) {
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
  EXPECT(simsiam_model_init(&model, config, params, count), SIMSIAM_STATUS_OK);
  CHECK(model.params == params && model.params_len == count &&
        model.backend == SIMSIAM_BACKEND_SIMD);
  CHECK(memcmp(&model.config, &config, sizeof config) == 0);

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
    SimsiamModel id_model;
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

  /* Every status has a message, unknown codes too. */
  for (int code = -1; code <= 11; code++) {
    const char *message = simsiam_status_message(code);
    CHECK(message != NULL && strlen(message) > 0);
  }
  CHECK(strcmp(simsiam_status_message(SIMSIAM_STATUS_OK), "ok") == 0);
  CHECK(strcmp(simsiam_status_message(99), "unknown status code") == 0);

  free(z1);
  free(z2);
  free(params);
  fprintf(stderr, "capi_test: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
