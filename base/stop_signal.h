// A graceful stop on SIGTERM / SIGINT for `keel train`. Slurm and Kubernetes preempt with SIGTERM
// and SIGKILL a grace period later; a run that dies at once loses up to checkpoint.every - 1 steps.
// The first signal only records itself: the training loop polls it between steps, finishes the
// step, writes a checkpoint and exits with 128 + the signal. A second signal (either kind) ends the
// process at once with the default action. SIGPIPE is ignored, so `keel train ... | head` does not
// kill training when the reader goes away (the console lines are then lost, the files are not).
// Deliberately not here: what the loop does on a stop (trainer/loop/train.cpp).
#pragma once

namespace keel::stop {

/// Installs the handlers (idempotent). Only `keel train` does: other commands keep the defaults.
void install_handlers();

/// 0, or the number of the first stop signal received since install_handlers().
int requested();

/// The exit status of a run stopped by signal `sig` (128 + sig, as a shell reports a signal death).
inline int exit_status(int sig) { return 128 + sig; }

}  // namespace keel::stop
