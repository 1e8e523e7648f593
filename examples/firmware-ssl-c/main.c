/* SimSiam trained on the Cortex-M4F from C (issue 22): the run of
 * examples/firmware-ssl/src/run.rs through the C API of include/simsiam.h, line for line:
 * every `# params`, `# loss`, `# predictions` and `mcu-ssl: few-shot` line must be the
 * Rust image's and the host replay's, bit for bit (`mcu_replay FILE` checks). Then the
 * summary line with this image's own RAM, stack and instructions. Exits through
 * semihosting (newlib's rdimon): 0 on success. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simsiam.h"

#define SEED 22u
#define STEPS 500u
#define BATCH 32u
#define LR 0.05f
#define CLASSES 6u
#define CHANNELS 6u
#define SAMPLES 32u
#define WINDOW (CHANNELS * SAMPLES)
#define FEATURE 32u
#define PARAMS 10784u
#define SCRATCH 55488u
#define WORKSPACE 576u
#define CLASSIFIER ((CLASSES + 2u) * FEATURE + CLASSES + 1u)
#define MAX_TRAIN 4096u
#define MAX_TEST 512u
#define SCALAR ((uint32_t)SIMSIAM_BACKEND_SCALAR)

extern const float ssl_train[], ssl_train_end[], ssl_labelled[], ssl_labelled_end[];
extern const float ssl_test[], ssl_test_end[], ssl_stats[];
extern const uint8_t ssl_labelled_classes[], ssl_test_classes[], ssl_test_classes_end[];

static float params[PARAMS], momentum[PARAMS], scratch[SCRATCH];
static float views1[BATCH * WINDOW], views2[BATCH * WINDOW];
static float window[WINDOW], feature[FEATURE], workspace[WORKSPACE], classifier[CLASSIFIER];
static uint16_t order[MAX_TRAIN];
static uint8_t predictions[MAX_TEST];

/* SysTick (25 MHz) under -icount shift=0: 40 instructions a tick. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void check(SimsiamStatus status, const char *what) {
  if (status != SIMSIAM_STATUS_OK) {
    printf("error: %s: %s\n", what, simsiam_status_message(status));
    exit(1);
  }
}

static uint64_t fnv1a(const float *values, size_t n) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; b++) {
      hash = (hash ^ ((bits >> (8 * b)) & 0xffu)) * 0x00000100000001b3ull;
    }
  }
  return hash;
}

/* `# params WHEN fnv HASH`, the hash as 16 hex digits. */
static void print_hash(const char *when) {
  uint64_t hash = fnv1a(params, PARAMS);
  printf("# params %s fnv %08" PRIx32 "%08" PRIx32 "\n", when, (uint32_t)(hash >> 32),
         (uint32_t)hash);
}

static uint32_t rng[4];

static size_t below(size_t n) {
  for (;;) {
    uint32_t x;
    check(simsiam_rng_next_u32(rng, &x), "rng");
    uint64_t m = (uint64_t)x * n;
    if ((uint64_t)(uint32_t)m >= (1ull << 32) % (n ? n : 1)) {
      return (size_t)(m >> 32);
    }
  }
}

static const SimsiamHarDense *network(void) {
  static SimsiamHarDense sizes;
  sizes = simsiam_har_dense_mcu();
  return &sizes;
}

static void encode(const float *raw) {
  memcpy(window, raw, sizeof window);
  check(simsiam_standardize(window, CHANNELS, SAMPLES, ssl_stats, ssl_stats + CHANNELS),
        "standardize");
  check(simsiam_har_dense_encode(network(), SCALAR, params, PARAMS, window, WINDOW, feature,
                                 FEATURE, workspace, WORKSPACE),
        "encode");
}

/* Few-shot accuracy of the network as it is; the predictions into `predictions`. */
static uint32_t few_shot(size_t labelled, size_t tests) {
  check(simsiam_fewshot_init(FEATURE, CLASSES, classifier, CLASSIFIER), "fewshot_init");
  for (size_t i = 0; i < labelled; i++) {
    encode(ssl_labelled + i * WINDOW);
    check(simsiam_fewshot_add(FEATURE, CLASSES, classifier, CLASSIFIER, feature,
                              ssl_labelled_classes[i]),
          "fewshot_add");
  }
  uint32_t correct = 0;
  for (size_t i = 0; i < tests; i++) {
    size_t class_index;
    encode(ssl_test + i * WINDOW);
    check(simsiam_fewshot_predict(FEATURE, CLASSES, classifier, CLASSIFIER, feature,
                                  &class_index),
          "fewshot_predict");
    predictions[i] = (uint8_t)class_index;
    correct += class_index == ssl_test_classes[i];
  }
  return correct;
}

static void print_predictions(const char *when, size_t tests) {
  printf("# predictions %s ", when);
  for (size_t i = 0; i < tests; i++) {
    putchar('0' + predictions[i]);
  }
  putchar('\n');
}

static void percent(uint32_t part, uint32_t whole) {
  uint32_t tenths = (part * 2000u + whole) / (2u * whole);
  printf("%" PRIu32 ".%" PRIu32, tenths / 10u, tenths % 10u);
}

/* Stack painting below the caller's stack pointer (as the Rust images). */
#define PAINT 0x5afec0deu
#define GUARD 256u
#define DEPTH (64u * 1024u)

__attribute__((noinline)) static void paint(uintptr_t sp) {
  for (uintptr_t a = sp - GUARD - DEPTH; a < sp - GUARD; a += 4) {
    *(volatile uint32_t *)a = PAINT;
  }
}

__attribute__((noinline)) static size_t used(uintptr_t sp) {
  uintptr_t a = sp - GUARD - DEPTH;
  while (a < sp - GUARD && *(volatile uint32_t *)a == PAINT) {
    a += 4;
  }
  return sp - a;
}

static uint32_t views_ticks, step_ticks;
static uint32_t correct_before, correct_after;

__attribute__((noinline)) static void run(void) {
  size_t windows = (size_t)(ssl_train_end - ssl_train) / WINDOW;
  size_t labelled = (size_t)(ssl_labelled_end - ssl_labelled) / WINDOW;
  size_t tests = (size_t)(ssl_test_classes_end - ssl_test_classes);
  SimsiamNetworkSizes sizes, one;
  check(simsiam_har_dense_sizes(network(), BATCH, &sizes), "sizes");
  check(simsiam_har_dense_sizes(network(), 1, &one), "sizes");
  if (sizes.param_count != PARAMS || sizes.train_scratch_len != SCRATCH ||
      one.encode_workspace_len > WORKSPACE || windows > MAX_TRAIN || tests > MAX_TEST ||
      windows < BATCH || (size_t)(ssl_test_end - ssl_test) != tests * WINDOW) {
    printf("error: sizes\n");
    exit(1);
  }
  check(simsiam_har_dense_init(network(), SEED, params, PARAMS), "init");
  print_hash("init");
  correct_before = few_shot(labelled, tests);
  print_predictions("before", tests);

  SimsiamViewRecipe recipe = simsiam_view_recipe_hapt();
  check(simsiam_rng_seed(SEED, rng), "rng_seed");
  for (size_t i = 0; i < windows; i++) {
    order[i] = (uint16_t)i;
  }
  size_t next = windows;
  for (uint32_t step = 0; step < STEPS; step++) {
    if (next + BATCH > windows) {
      for (size_t i = windows - 1; i >= 1; i--) {
        size_t j = below(i + 1);
        uint16_t t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      next = 0;
    }
    uint32_t start = SYST_CVR;
    for (size_t k = 0; k < BATCH; k++) {
      check(simsiam_two_views(ssl_train + (size_t)order[next + k] * WINDOW, CHANNELS, SAMPLES,
                              ssl_stats, ssl_stats + CHANNELS, recipe, rng, views1 + k * WINDOW,
                              views2 + k * WINDOW),
            "two_views");
    }
    next += BATCH;
    uint32_t middle = SYST_CVR;
    float loss;
    check(simsiam_har_dense_train_step(network(), SCALAR, params, PARAMS, momentum, PARAMS, step,
                                       simsiam_cosine_lr(LR, step, STEPS), views1, views2,
                                       BATCH * WINDOW, scratch, SCRATCH, &loss),
          "train_step");
    uint32_t end = SYST_CVR;
    views_ticks += (start - middle) & 0x00ffffffu;
    step_ticks += (middle - end) & 0x00ffffffu;
    uint32_t bits;
    memcpy(&bits, &loss, 4);
    printf("# loss %" PRIu32 " %08" PRIx32 "\n", step, bits);
  }
  print_hash("trained");
  correct_after = few_shot(labelled, tests);
  print_predictions("after", tests);
  printf("mcu-ssl: few-shot accuracy before ");
  percent(correct_before, (uint32_t)tests);
  printf(" %% after ");
  percent(correct_after, (uint32_t)tests);
  printf(" %% on %" PRIu32 " test windows\n", (uint32_t)tests);
}

extern uint32_t __data_start, __data_end, __bss_start__, __bss_end__;

int main(void) {
  SYST_RVR = 0x00ffffffu;
  SYST_CVR = 0;
  SYST_CSR = 5u; /* processor clock, enabled, no interrupt */
  uintptr_t sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  paint(sp);
  run();
  size_t stack = used(sp);
  size_t statics = (size_t)((uintptr_t)&__data_end - (uintptr_t)&__data_start) +
                   (size_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__bss_start__);
  uint64_t with = ((uint64_t)views_ticks + step_ticks) * 40u / STEPS;
  printf("mcu-ssl: recipe hapt-mcu steps %u batch %u params %u ram %u B stack %u B "
         "instructions/step %" PRIu32 "\n",
         STEPS, BATCH, PARAMS, (unsigned)(statics + stack), (unsigned)stack, (uint32_t)with);
  printf("# instructions/step: views %" PRIu32 ", step without augmentation %" PRIu32
         "; .data + .bss %u B\n",
         (uint32_t)((uint64_t)views_ticks * 40u / STEPS),
         (uint32_t)((uint64_t)step_ticks * 40u / STEPS), (unsigned)statics);
  return 0;
}
