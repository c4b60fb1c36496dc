// Facts fixed at build time.
#pragma once

namespace keel {

/// Short git revision of the source tree keel was built from ("<sha>-dirty" with local changes,
/// "unknown" outside git). Written to every run directory.
const char* build_git_revision();

}  // namespace keel
