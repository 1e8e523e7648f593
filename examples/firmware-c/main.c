/* The simsiam head on a Cortex-M4F (QEMU mps2-an386) from C, through the C ABI of the
 * thumbv7em static library; parameters in flash (params.c, generated at build time).
 *
 * Runs the shared scenario (see capi/examples/reference.rs) on both kernel twins and
 * prints `params.fnv` (a hash of the flash parameters) and the `key hex-bits...` lines
 * over semihosting (newlib rdimon), which `reference compare FILE` checks bit for bit
 * against the host; then the instructions each call executed (SysTick under
 * `-icount shift=0`) and the stack that project, loss and a batch loss of
 * BATCH_PAIRS pairs used (stack painting). Returns 0 on success. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "simsiam.h"

extern const float simsiam_fw_params[];
extern const size_t simsiam_fw_params_len;

#define D_ENCODER 64
#define D_OUT 32
/* Pairs in the batch loss whose stack is measured: more than one pair per group, so it
 * takes the lanes path (its lane blocks in the workspace), not the pair path. */
#define BATCH_PAIRS 3
/* The lane blocks of the default head (simsiam_workspace_len): 16 lanes for each of
 * 64 input columns, 128 hidden units and 32 output rows, plus 15 floats of slack so
 * that they start on a 64-byte line. */
#define LANES_LEN (16 * (64 + 128 + 32) + 15)
/* SysTick counts the 25 MHz system clock; at one instruction per nanosecond
 * (-icount shift=0) one tick is 40 instructions. */
#define INSTRUCTIONS_PER_TICK 40u
#define CALIBRATION_LOOPS 100000u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static uint32_t ticks_since(uint32_t start) {
  return (start - SYST_CVR) & 0x00ffffffu;
}

/* Runs `n` iterations of `subs; bne` (2n instructions). */
static void calibration_loop(uint32_t n) {
  __asm__ volatile(
      ".p2align 3\n"
      "1: subs %0, #1\n"
      "bne 1b\n"
      : "+r"(n)
      :
      : "cc");
}

#define PAINT 0x5afec0deu
#define GUARD 256u
#define DEPTH (32u * 1024u)

static uintptr_t stack_pointer(void) {
  uintptr_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

__attribute__((noinline)) static void paint(uintptr_t sp) {
  for (uintptr_t a = sp - GUARD - DEPTH; a < sp - GUARD; a += 4) *(volatile uint32_t *)a = PAINT;
}

__attribute__((noinline)) static uint32_t used(uintptr_t sp) {
  uintptr_t a = sp - GUARD - DEPTH;
  while (a < sp - GUARD && *(volatile uint32_t *)a == PAINT) a += 4;
  return (uint32_t)(sp - a);
}

static void print_values(const char *key, const char *twin, const float *v, size_t n) {
  printf("%s.%s", key, twin);
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    printf(" %08" PRIx32, bits);
  }
  printf("\n");
}

/* FNV-1a 64 of the floats' bits, little-endian (as `reference print`'s `params.fnv`). */
static uint64_t fnv1a(const float *v, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    for (int b = 0; b < 4; b++) h = (h ^ ((bits >> (8 * b)) & 0xffu)) * 0x00000100000001b3ull;
  }
  return h;
}

static int check(SimsiamStatus status, const char *what) {
  if (status != SIMSIAM_STATUS_OK) {
    printf("error: %s: %s\n", what, simsiam_status_message(status));
    return 1;
  }
  return 0;
}

static float z1[D_ENCODER], z2[D_ENCODER];
/* The batch: rows (z1, z2, z1) and (z2, z1, z2), so pair 0 is the single loss's pair. */
static float z1s[BATCH_PAIRS * D_ENCODER], z2s[BATCH_PAIRS * D_ENCODER];
static float batch_workspace[4 * D_OUT * BATCH_PAIRS + LANES_LEN];

static int run(SimsiamModel model, uint32_t backend, const char *twin) {
  float projected[D_OUT], predicted[D_OUT], workspace[4 * D_OUT], loss = 0.0f, again = 0.0f;
  model.backend = backend;
  uint32_t t = SYST_CVR;
  SimsiamStatus s = simsiam_project(&model, z1, D_ENCODER, projected, D_OUT);
  uint32_t project_ticks = ticks_since(t);
  if (check(s, "project")) return 1;
  t = SYST_CVR;
  s = simsiam_predict(&model, projected, D_OUT, predicted, D_OUT);
  uint32_t predict_ticks = ticks_since(t);
  if (check(s, "predict")) return 1;
  t = SYST_CVR;
  s = simsiam_loss(&model, z1, D_ENCODER, z2, D_ENCODER, workspace, 4 * D_OUT, &loss);
  uint32_t loss_ticks = ticks_since(t);
  if (check(s, "loss")) return 1;

  float projected_again[D_OUT], predicted_again[D_OUT], losses[BATCH_PAIRS];
  uintptr_t sp = stack_pointer();
  paint(sp);
  s = simsiam_project(&model, z1, D_ENCODER, projected_again, D_OUT);
  uint32_t project_stack = used(sp);
  if (check(s, "project (painted)")) return 1;
  paint(sp);
  s = simsiam_predict(&model, projected, D_OUT, predicted_again, D_OUT);
  uint32_t predict_stack = used(sp);
  if (check(s, "predict (painted)")) return 1;
  paint(sp);
  s = simsiam_loss(&model, z1, D_ENCODER, z2, D_ENCODER, workspace, 4 * D_OUT, &again);
  uint32_t loss_stack = used(sp);
  if (check(s, "loss (painted)")) return 1;
  if (memcmp(&again, &loss, sizeof loss) != 0 ||
      memcmp(projected_again, projected, sizeof projected) != 0 ||
      memcmp(predicted_again, predicted, sizeof predicted) != 0) {
    printf("error: second project, predict or loss differs\n");
    return 1;
  }
  size_t batch_ws_len = 0;
  if (check(simsiam_batch_loss_workspace_len(model.config, BATCH_PAIRS, &batch_ws_len),
            "batch_loss_workspace_len"))
    return 1;
  if (batch_ws_len != sizeof batch_workspace / sizeof(float)) {
    printf("error: batch workspace %u floats, expected %u\n", (unsigned)batch_ws_len,
           (unsigned)(sizeof batch_workspace / sizeof(float)));
    return 1;
  }
  paint(sp);
  s = simsiam_loss_batch(&model, z1s, BATCH_PAIRS * D_ENCODER, z2s, BATCH_PAIRS * D_ENCODER,
                         losses, BATCH_PAIRS, batch_workspace, batch_ws_len);
  uint32_t batch_stack = used(sp);
  if (check(s, "loss_batch (painted)")) return 1;
  /* The scalar twin sums a batch in the single calls' order: bit for bit. */
  if (backend == SIMSIAM_BACKEND_SCALAR && memcmp(&losses[0], &loss, sizeof loss) != 0) {
    printf("error: scalar loss_batch pair 0 differs from loss\n");
    return 1;
  }

  print_values("project", twin, projected, D_OUT);
  print_values("predict", twin, predicted, D_OUT);
  print_values("loss", twin, &loss, 1);
  printf("# %s: loss = %.6f\n", twin, (double)loss);
  printf("# %s instructions (C API): project %" PRIu32
         ", predict %" PRIu32 ", loss %" PRIu32 " (SysTick x 40, +-40)\n",
         twin, project_ticks * INSTRUCTIONS_PER_TICK, predict_ticks * INSTRUCTIONS_PER_TICK,
         loss_ticks * INSTRUCTIONS_PER_TICK);
  printf("# %s stack: project %" PRIu32 ", predict %" PRIu32 ", loss %" PRIu32
         ", loss_batch of %d pairs %" PRIu32
         " bytes (painted high-water marks, from the caller's SP)\n",
         twin, project_stack, predict_stack, loss_stack, BATCH_PAIRS, batch_stack);
  return 0;
}

int main(void) {
  SYST_RVR = 0x00ffffffu;
  SYST_CVR = 0;
  SYST_CSR = 0x5u; /* enable, processor clock, no interrupt */

  uint32_t t = SYST_CVR;
  calibration_loop(CALIBRATION_LOOPS);
  uint32_t calibration = ticks_since(t) * INSTRUCTIONS_PER_TICK;

  for (size_t i = 0; i < D_ENCODER; i++) {
    z1[i] = (float)((i * 7) % 13) * 0.125f - 0.75f;
    z2[i] = (float)((i * 5) % 11) * 0.125f - 0.625f;
  }
  for (size_t j = 0; j < BATCH_PAIRS; j++) {
    memcpy(z1s + j * D_ENCODER, j % 2 ? z2 : z1, sizeof z1);
    memcpy(z2s + j * D_ENCODER, j % 2 ? z1 : z2, sizeof z2);
  }
  if (simsiam_abi_version() != SIMSIAM_ABI_VERSION) {
    printf("error: library ABI %" PRIu32 ", header %d\n", simsiam_abi_version(),
           SIMSIAM_ABI_VERSION);
    return 1;
  }
  SimsiamConfig config = simsiam_config_default();
  /* The caller sets struct_size; simsiam_model_init fills the rest. */
  SimsiamModel model = {.struct_size = sizeof(SimsiamModel)};
  t = SYST_CVR;
  SimsiamStatus s = simsiam_model_init(&model, config, simsiam_fw_params, simsiam_fw_params_len);
  uint32_t init_ticks = ticks_since(t);
  if (check(s, "simsiam_model_init")) return 1;

  printf("# simsiam on Cortex-M4F (mps2-an386) from C, parameters in flash\n");
  /* Two halves: newlib's <inttypes.h> has no PRIx64 here. */
  uint64_t fnv = fnv1a(simsiam_fw_params, simsiam_fw_params_len);
  printf("params.fnv %08" PRIx32 "%08" PRIx32 "\n", (uint32_t)(fnv >> 32), (uint32_t)fnv);
  if (run(model, SIMSIAM_BACKEND_SIMD, "simd")) return 1;
  if (run(model, SIMSIAM_BACKEND_SCALAR, "scalar")) return 1;
  printf("# instructions: simsiam_model_init %" PRIu32 " (SysTick x 40, +-40)\n",
         init_ticks * INSTRUCTIONS_PER_TICK);
  printf("# calibration: %u instructions counted as %" PRIu32 "\n", 2 * CALIBRATION_LOOPS,
         calibration);
  return 0;
}
