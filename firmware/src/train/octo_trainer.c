/* octo_trainer.c - the training engine's run (see octo_trainer.h): one translation unit made of
 * the parts below, so GCC optimizes the step as a whole exactly as it did when they were one file
 * (the per-call context never escapes the unit: splitting it into separately compiled files changes
 * the generated code of octo_trainer_step and so the instruction counts of the virtual boards).
 *   octo_trainer_forward.inc   forward pass, loss; octo_trainer_forward, octo_trainer_eval
 *   octo_trainer_update.inc    the optimizers (SGD-momentum FP32, INT8 fixed point)
 *   octo_trainer_backward.inc  output gradients, LAC backward, weight and input gradients;
 *                              octo_trainer_backward, octo_trainer_step
 * The state blob and the entry points that touch no layer are in octo_trainer_state.c. */
#include "octo_trainer_internal.h"

#include "octo_trainer_forward.inc"
#include "octo_trainer_update.inc"
#include "octo_trainer_backward.inc"
