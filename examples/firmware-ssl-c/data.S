/* The slice of HAPT in flash, as the host replay writes it
 * (`mcu_replay --write-data DIR`; assemble with -Wa,-I DIR). */
  .section .rodata.ssl_data, "a"
  .macro blob name, file
  .balign 4
  .global \name
\name:
  .incbin "\file"
  .global \name\()_end
\name\()_end:
  .endm
  blob ssl_train, "train.f32"
  blob ssl_labelled, "labelled.f32"
  blob ssl_test, "test.f32"
  blob ssl_stats, "stats.f32"
  blob ssl_labelled_classes, "labelled.u8"
  blob ssl_test_classes, "test.u8"
